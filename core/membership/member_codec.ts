// How members are stored and carried: the bucket key is the member id as 8 big-endian bytes; the value is JSON
// with etcd's field names (id, name, peerURLs, clientURLs, isLearner). JSON numbers lose precision above 2^53, so
// the stored id is a hex string and the conf-change context writes and reads the id digits exactly (Go's
// encoding/json writes a uint64 as a bare integer).

export interface Member {
  readonly id: bigint;
  /** Empty until the member publishes itself (etcd: "unstarted"); set from --initial-cluster at bootstrap. */
  readonly name: string;
  /** Sorted, normalised (see urls.ts). */
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export function memberKey(id: bigint): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, id, false);
  return key;
}

export function memberIdOfKey(key: Uint8Array): bigint {
  if (key.length !== 8) throw new Error(`membership: member key has ${key.length} bytes, want 8`);
  return new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0, false);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeMember(m: Member): Uint8Array {
  return enc.encode(
    JSON.stringify({
      id: m.id.toString(16),
      name: m.name,
      peerURLs: m.peerUrls,
      clientURLs: m.clientUrls,
      isLearner: m.isLearner,
    }),
  );
}

function stringArray(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string"))
    throw new Error(`membership: ${what} is not a list of strings`);
  return v as string[];
}

export function decodeMember(value: Uint8Array): Member {
  const o = JSON.parse(dec.decode(value)) as Record<string, unknown>;
  if (typeof o["id"] !== "string" || !/^[0-9a-f]{1,16}$/.test(o["id"]))
    throw new Error(`membership: bad stored id ${String(o["id"])}`);
  return {
    id: BigInt("0x" + o["id"]),
    name: typeof o["name"] === "string" ? o["name"] : "",
    peerUrls: stringArray(o["peerURLs"], "peerURLs"),
    clientUrls: stringArray(o["clientURLs"], "clientURLs"),
    isLearner: o["isLearner"] === true,
  };
}

/** A conf change's context: the member (etcd's JSON shape) and whether the change promotes a learner. */
export interface ConfChangeContext {
  readonly member: Member;
  readonly isPromote: boolean;
}

/** etcd's ConfigChangeContext JSON: the member's fields flattened, plus isPromote; the id a bare uint64. */
export function encodeConfChangeContext(c: ConfChangeContext): Uint8Array {
  const m = c.member;
  const body = JSON.stringify({
    name: m.name === "" ? undefined : m.name,
    peerURLs: m.peerUrls,
    isLearner: m.isLearner || undefined,
    clientURLs: m.clientUrls.length === 0 ? undefined : m.clientUrls,
    isPromote: c.isPromote,
  });
  return enc.encode(`{"id":${m.id.toString(10)},${body.slice(1)}`);
}

export function decodeConfChangeContext(bytes: Uint8Array): ConfChangeContext {
  const text = dec.decode(bytes);
  const idMatch = /"id"\s*:\s*(\d{1,20})\s*[,}]/.exec(text);
  if (idMatch === null) throw new Error(`membership: conf change context without an id: ${text.slice(0, 200)}`);
  const id = BigInt(idMatch[1] ?? "");
  if (id >= 1n << 64n) throw new Error(`membership: conf change id ${id} exceeds uint64`);
  const o = JSON.parse(text) as Record<string, unknown>;
  return {
    member: {
      id,
      name: typeof o["name"] === "string" ? o["name"] : "",
      peerUrls: stringArray(o["peerURLs"], "peerURLs"),
      clientUrls: stringArray(o["clientURLs"], "clientURLs"),
      isLearner: o["isLearner"] === true,
    },
    isPromote: o["isPromote"] === true,
  };
}
