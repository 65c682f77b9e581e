// Proves the bbolt writer and reader (core/bbolt): what the writer bulk-loads — many keys (several branch levels),
// values larger than a page (overflow pages), an empty bucket, binary keys — reads back entry for entry; keys out
// of order are refused; a corrupt meta falls back to the other meta and two corrupt metas are refused; and, with
// etcd's tools on the machine, bbolt itself accepts the file: `etcdctl snapshot status` passes its consistency
// check (every page reachable, none twice) and reports the key count, size and CRC-32C hash computed here.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { BoltReader } from "../../core/bbolt/reader.js";
import { BoltWriter } from "../../core/bbolt/writer.js";
import { haveEtcd } from "../compat/processes.js";

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-bbolt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Buckets = Map<string, [Buffer, Buffer][]>;

function sample(): Buckets {
  const many: [Buffer, Buffer][] = [];
  for (let i = 0; i < 20_000; i++)
    many.push([Buffer.from(`key/${String(i).padStart(6, "0")}`), Buffer.from(`value ${i} `.repeat((i % 7) + 1))]);
  const big: [Buffer, Buffer][] = [
    [Buffer.from("a"), Buffer.alloc(3 * 4096 + 17, 1)],
    [Buffer.from("b"), Buffer.alloc(10, 2)],
    [Buffer.from("c"), Buffer.alloc(100_000, 3)],
  ];
  const binary: [Buffer, Buffer][] = [
    [Buffer.from([0]), Buffer.alloc(0)],
    [Buffer.from([0, 0]), Buffer.from([0xff])],
    [Buffer.from([0xff, 0xfe]), Buffer.from("x")],
  ];
  return new Map([
    ["many", many],
    ["big", big],
    ["empty", []],
    ["binary", binary],
  ]);
}

function write(file: string, buckets: Buckets): number {
  const w = BoltWriter.create(file);
  for (const [name, entries] of buckets) {
    w.beginBucket(Buffer.from(name));
    for (const [k, v] of entries) w.put(k, v);
  }
  return w.finish();
}

function readAll(file: string): Buckets {
  const r = BoltReader.open(file);
  try {
    const out: Buckets = new Map();
    for (const name of r.bucketNames())
      out.set(
        name.toString(),
        [...(r.entries(name) ?? [])].map((e) => [Buffer.from(e.key), Buffer.from(e.value)]),
      );
    return out;
  } finally {
    r.close();
  }
}

const CASTAGNOLI = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32c(parts: Iterable<Uint8Array>): number {
  let c = 0xffffffff;
  for (const p of parts) for (const b of p) c = (CASTAGNOLI[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

describe("bbolt files", () => {
  const file = join(dir, "sample.db");
  const buckets = sample();
  const bytes = write(file, buckets);

  it("read back exactly what was written, buckets in name order", () => {
    expect(bytes % 4096).toBe(0);
    expect(readFileSync(file).length).toBe(bytes);
    const got = readAll(file);
    expect([...got.keys()]).toEqual([...buckets.keys()].sort());
    for (const [name, entries] of buckets) expect(got.get(name), name).toEqual(entries);
  });

  it("refuse keys out of order and a file whose two metas are both damaged; use the other meta when one is", () => {
    const w = BoltWriter.create(join(dir, "order.db"));
    w.beginBucket(Buffer.from("b"));
    w.put(Buffer.from("2"), Buffer.from(""));
    expect(() => w.put(Buffer.from("1"), Buffer.from(""))).toThrow(/out of order/);
    w.abort();

    const raw = readFileSync(file);
    const oneBad = Buffer.from(raw);
    oneBad[16 + 20] = (oneBad[16 + 20] ?? 0) ^ 0xff; // meta 0's root page id: its checksum no longer matches
    writeFileSync(join(dir, "one-bad.db"), oneBad);
    expect(readAll(join(dir, "one-bad.db")).get("big")).toEqual(buckets.get("big"));
    const bothBad = Buffer.from(oneBad);
    bothBad[4096 + 16 + 20] = (bothBad[4096 + 16 + 20] ?? 0) ^ 0xff;
    writeFileSync(join(dir, "both-bad.db"), bothBad);
    expect(() => BoltReader.open(join(dir, "both-bad.db"))).toThrow(/no valid meta page/);
  });

  it.runIf(haveEtcd())(
    "pass bbolt's own consistency check; etcdctl snapshot status reports their keys, size and hash",
    () => {
      const saved = join(dir, "status.db");
      writeFileSync(saved, readFileSync(file));
      appendFileSync(saved, createHash("sha256").update(readFileSync(file)).digest());
      const r = spawnSync("etcdctl", ["snapshot", "status", saved, "-w", "json"], {
        encoding: "utf8",
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      expect(r.stderr).toBe("");
      const status = JSON.parse(r.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
      const names = [...buckets.keys()].sort();
      const hash = crc32c(names.flatMap((n) => [Buffer.from(n), ...(buckets.get(n) ?? []).flat()]));
      const keys = names.reduce((n, name) => n + (buckets.get(name)?.length ?? 0), 0);
      expect(status).toEqual({ hash, revision: 0, totalKey: keys, totalSize: bytes });
    },
  );
});
