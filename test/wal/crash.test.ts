// Proves durability under kill -9: a child process appends Ready batches to a WalStorage (small segments, so
// kills also land around segment cuts and snapshots) and prints each batch's last index after save() returns
// (synced). The parent kills it with SIGKILL after a random number of acknowledgements, reopens the WAL and
// checks that every acknowledged entry is there with its exact bytes, that every recovered entry is one the
// child wrote (payloads are a function of the index; the log is contiguous), and that the hard state is at
// least the last acknowledged one. Repeated ≥ 50 times (500 with SOAK=1).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { WalStorage } from "../../core/wal/wal_storage.js";
import { transpileTree } from "./transpile.js";

const KILLS = Number(process.env.WAL_CRASH_KILLS ?? (process.env.SOAK === "1" ? 500 : 50));
const SEED = Number(process.env.WAL_CRASH_SEED ?? 4242);
const MAX_BATCH = 7;

/** Entry payloads are a pure function of the index, so the parent can check every byte. */
const payloadSource = `function payload(i) { const n = 20 + (i * 7919) % 1500; const b = new Uint8Array(n); for (let k = 0; k < n; k++) b[k] = (i + k) & 255; return b; }`;
const payload = new Function(`${payloadSource}; return payload;`)() as (i: number) => Uint8Array;

const childSource = (walModule: string): string => `
import { WalStorage } from ${JSON.stringify(walModule)};
${payloadSource}
const s = WalStorage.open(process.argv[2], { segmentBytes: 32 * 1024 });
let next = s.lastIndex() + 1;
const term = 1;
for (;;) {
  const n = 1 + (next % ${MAX_BATCH});
  const entries = [];
  for (let i = 0; i < n; i++) entries.push({ term, index: next + i, type: 0, data: payload(next + i) });
  s.save({ hardState: { term, vote: 1n, commit: next + n - 1 }, entries }, true);
  next += n;
  if (next % 97 < n) s.createSnapshot(next - 1, { voters: [1n], learners: [] }, new Uint8Array([1]), 50);
  process.stdout.write("acked " + (next - 1) + "\\n");
}
`;

let work: string;
let childScript: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "wal-crash-"));
  const walModule = transpileTree(resolve("."), "core/wal/wal_storage.ts", join(work, "js"));
  childScript = join(work, "js", "child.mjs");
  writeFileSync(childScript, childSource(walModule));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Runs the child until `acks` acknowledgements, kills it with SIGKILL, returns the last acknowledged index. */
function runAndKill(dataDir: string, acks: number): Promise<number> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [childScript, dataDir], { stdio: ["ignore", "pipe", "pipe"] });
    let lastAcked = 0;
    let seen = 0;
    let buffered = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        lastAcked = Math.max(lastAcked, Number(line.split(" ")[1]));
        seen += 1;
        if (seen === acks) child.kill("SIGKILL");
      }
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolveRun(lastAcked);
      else reject(new Error(`child exited code=${code} signal=${signal} before ${acks} acks: ${stderr}`));
    });
  });
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe(`WAL under kill -9 (${KILLS} kills, seed=${SEED})`, () => {
  it("recovers every acknowledged entry and nothing that was not written", async () => {
    const dataDir = join(work, "data");
    const rand = rng(SEED);
    let acked = 0;
    let repairs = 0;
    for (let k = 0; k < KILLS; k++) {
      const lastAcked = await runAndKill(dataDir, 1 + Math.floor(rand() * 40));
      acked = Math.max(acked, lastAcked);
      const s = WalStorage.open(dataDir, { segmentBytes: 32 * 1024 });
      try {
        if (s.repaired !== undefined) repairs += 1;
        const last = s.lastIndex();
        expect(last, `kill ${k} seed=${SEED}: lastIndex ${last} < acknowledged ${acked}`).toBeGreaterThanOrEqual(acked);
        expect(s.initialState().hardState.commit, `kill ${k}: commit`).toBeGreaterThanOrEqual(acked);
        const entries = s.entries(s.firstIndex(), last + 1, Infinity);
        for (const e of entries) {
          const want = payload(e.index);
          if (e.data.length !== want.length || !e.data.every((b, i) => b === want[i])) {
            throw new Error(
              `kill ${k} seed=${SEED}: entry ${e.index} bytes differ (${e.data.length} vs ${want.length})`,
            );
          }
        }
        expect(entries.length, `kill ${k}: contiguous from ${s.firstIndex()}`).toBe(last - s.firstIndex() + 1);
      } finally {
        s.close();
      }
    }
    console.log(
      `wal crash: ${KILLS} kills, last acknowledged index ${acked}, ${repairs} torn tails repaired, seed=${SEED}`,
    );
  });
});
