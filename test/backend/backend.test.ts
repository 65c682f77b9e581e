// Proves the backend's contracts: the consistent index commits atomically with the batch (and a failed batch
// commits neither), it survives reopen, size reporting grows with data, and a foreign, newer-format or corrupt
// data file is refused with an error naming the file (never a silent reset).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { BACKEND_FILE, Backend, BackendFormatError, META_BUCKET } from "../../core/backend/backend.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

let dir: string;
const opened: Backend[] = [];
function openBackend(): Backend {
  const b = Backend.open(dir, { buckets: ["data"] });
  opened.push(b);
  return b;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "backend-"));
});

afterEach(async () => {
  for (const b of opened.splice(0)) await b.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("batches and the consistent index", () => {
  it("stores the consistent index in the batch's transaction and reads it back after reopen", async () => {
    const b = openBackend();
    expect(b.consistentIndex()).toBe(0);
    await b.batch(7, (tx) => tx.put("data", enc("k"), enc("v7")));
    expect(b.consistentIndex()).toBe(7);
    await b.close();
    const again = openBackend();
    expect(again.consistentIndex()).toBe(7);
    expect(dec(again.readNow((v) => v.get("data", enc("k"))))).toBe("v7");
  });

  it("a batch that throws commits neither its data nor its consistent index", async () => {
    const b = openBackend();
    await b.batch(1, (tx) => tx.put("data", enc("a"), enc("1")));
    const failed = b.batch(2, (tx) => {
      tx.put("data", enc("a"), enc("2"));
      throw new Error("apply failed");
    });
    await expect(failed).rejects.toThrow("apply failed");
    expect(b.consistentIndex()).toBe(1);
    expect(dec(b.readNow((v) => v.get("data", enc("a"))))).toBe("1");
    await b.close();
    expect(openBackend().consistentIndex(), "after reopen").toBe(1);
  });

  it("sync() flushes committed batches and resolves", async () => {
    const b = openBackend();
    await b.batch(1, (tx) => tx.put("data", enc("k"), enc("v")));
    await expect(b.sync()).resolves.toBeUndefined();
  });

  it("refuses a consistent index that does not grow", async () => {
    const b = openBackend();
    await b.batch(5, () => undefined);
    await expect(b.batch(5, () => undefined)).rejects.toThrow("consistent index 5 <= committed 5");
  });

  it("reports db size and in-use size, in-use growing with data", async () => {
    const b = openBackend();
    const before = b.size();
    await b.batch(1, (tx) => {
      for (let i = 0; i < 2000; i++) tx.put("data", enc(`key-${i}`), new Uint8Array(512));
    });
    const after = b.size();
    expect(after.dbSizeInUseBytes, `in use ${after.dbSizeInUseBytes} vs ${before.dbSizeInUseBytes}`).toBeGreaterThan(
      before.dbSizeInUseBytes + 2000 * 512,
    );
    expect(after.dbSizeBytes).toBeGreaterThanOrEqual(after.dbSizeInUseBytes);
  });
});

describe("defragment", () => {
  it("shrinks the file after most data is deleted and keeps the rest and the consistent index", async () => {
    const b = openBackend();
    await b.batch(1, (tx) => {
      for (let i = 0; i < 3000; i++) tx.put("data", enc(`key-${i}`), new Uint8Array(1024));
    });
    await b.batch(2, (tx) => {
      for (let i = 10; i < 3000; i++) tx.del("data", enc(`key-${i}`));
    });
    await b.close();
    opened.length = 0;
    const { beforeBytes, afterBytes } = await Backend.defragment(dir);
    expect(afterBytes, `defrag ${beforeBytes} -> ${afterBytes} bytes`).toBeLessThan(beforeBytes / 4);
    const again = openBackend();
    expect(again.consistentIndex()).toBe(2);
    const left = again.readNow((v) => [...v.range("data", {})].length);
    expect(left).toBe(10);
  });
});

describe("data-format safety", () => {
  it("refuses a data file of a newer format, naming the file", async () => {
    const b = openBackend();
    await b.batch(undefined, (tx) => tx.put(META_BUCKET, enc("format"), enc("etcd-ts/backend/v99")));
    await b.close();
    opened.length = 0;
    const file = join(dir, BACKEND_FILE);
    expect(() => Backend.open(dir, { buckets: ["data"] })).toThrow(BackendFormatError);
    expect(() => Backend.open(dir, { buckets: ["data"] })).toThrow(`backend ${file}: format "etcd-ts/backend/v99"`);
  });

  it("refuses a file that is not LMDB (foreign or corrupt), naming the file, and leaves it unchanged", () => {
    const file = join(dir, BACKEND_FILE);
    const garbage = Buffer.alloc(64 * 1024, 0x5a);
    writeFileSync(file, garbage);
    expect(() => Backend.open(dir, { buckets: ["data"] })).toThrow(`backend ${file}: not a readable LMDB file`);
    expect(readFileSync(file).equals(garbage), "the refused file is untouched").toBe(true);
  });
});
