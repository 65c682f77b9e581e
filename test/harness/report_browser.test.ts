// Proves report.html works in a real browser: a report rebuilt from a run's CSVs opens in headless Chromium
// (Debian's package) with no console message and shows its charts; the same check flags a page that logs an
// error, so it can fail.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderReport } from "../../harness/report.js";

const RUN = resolve(import.meta.dirname, "../../results/baseline/2026-11-25T11-44-48Z-kube-5000");
const HAVE_CHROMIUM = spawnSync("chromium", ["--version"]).status === 0;
if (process.env["CI"] === "true" && !HAVE_CHROMIUM) throw new Error("CI must have chromium (.ci/run installs it)");

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Opens a file in headless Chromium: the DOM after load, the console lines it logged, and a screenshot. */
function openInChromium(file: string, screenshot: string): { dom: string; consoleLines: string[] } {
  const profile = mkdtempSync(join(tmpdir(), "chromium-profile-"));
  dirs.push(profile);
  const flags = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
    "--enable-logging=stderr",
    "--v=0",
  ];
  const dump = spawnSync("chromium", [...flags, "--dump-dom", `file://${file}`], { encoding: "utf8", timeout: 60_000 });
  expect(dump.status, dump.stderr).toBe(0);
  const shot = spawnSync(
    "chromium",
    [...flags, "--window-size=1000,2400", `--screenshot=${screenshot}`, `file://${file}`],
    { encoding: "utf8", timeout: 60_000 },
  );
  expect(shot.status, shot.stderr).toBe(0);
  return { dom: dump.stdout, consoleLines: dump.stderr.split("\n").filter((l) => l.includes(":CONSOLE:")) };
}

/** A copy of the baseline run without its report.html, so the report under test is the one rebuilt here. */
function copyRun(): string {
  const dir = mkdtempSync(join(tmpdir(), "report-browser-"));
  dirs.push(dir);
  for (const name of readdirSync(RUN)) {
    const from = join(RUN, name);
    if (name === "report.html") continue;
    if (statSync(from).isDirectory()) {
      mkdirSync(join(dir, name));
      for (const f of readdirSync(from)) copyFileSync(join(from, f), join(dir, name, f));
    } else copyFileSync(from, join(dir, name));
  }
  return dir;
}

describe.runIf(HAVE_CHROMIUM)("report.html in headless Chromium", () => {
  it("loads with no console message and shows its charts", () => {
    const dir = copyRun();
    const file = renderReport(dir);
    expect(file).toBe(join(dir, "report.html"));
    const { dom, consoleLines } = openInChromium(file, join(dir, "report.png"));
    expect(consoleLines).toEqual([]);
    expect((dom.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(4);
    expect(dom).toContain("P99 per phase");
    expect(dom).toContain("etcd-ts-concurrent");
    expect(statSync(join(dir, "report.png")).size).toBeGreaterThan(10_000);
  });

  it("flags a page that logs to the console (the check can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "report-browser-bad-"));
    dirs.push(dir);
    const file = join(dir, "bad.html");
    writeFileSync(file, "<html><body><script>console.error('boom')</script></body></html>");
    const { consoleLines } = openInChromium(file, join(dir, "bad.png"));
    expect(consoleLines.some((l) => l.includes("boom"))).toBe(true);
  });
});
