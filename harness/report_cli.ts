// `npm run report -- DIR`: rebuilds DIR/report.html from DIR's CSVs and env.json.
import { argv, exit } from "node:process";
import { renderReport } from "./report.js";

const dir = argv[2];
if (dir === undefined) {
  console.error("usage: npm run report -- <results dir>");
  exit(2);
}
console.log(`report: ${renderReport(dir)}`);
