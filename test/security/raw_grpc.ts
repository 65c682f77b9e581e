// A bare gRPC client for etcd's Auth and KV services that sends hand-encoded protobuf bytes, so tests can put
// bytes no typed client would (NUL, invalid UTF-8, 64 KiB names) on the wire, and read replies field by field.

import * as grpc from "@grpc/grpc-js";

export type RawReply =
  | { readonly ok: true; readonly body: Buffer }
  | { readonly ok: false; readonly code: number; readonly details: string };

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** Protobuf writers: a length-delimited field (string, bytes, message) and a varint field (bool, int). */
export const pb = {
  bytes: (field: number, value: Uint8Array | string): Buffer => {
    const b = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
    return Buffer.concat([varint((field << 3) | 2), varint(b.length), b]);
  },
  varint: (field: number, value: number): Buffer => Buffer.concat([varint(field << 3), varint(value)]),
  msg: (...parts: Buffer[]): Buffer => Buffer.concat(parts),
};

/** The length-delimited fields of a message by number (varint and fixed fields are skipped). */
export function fieldsOf(body: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  let p = 0;
  const readVarint = (): number => {
    let v = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = body[p++];
      if (b === undefined) throw new Error(`truncated varint at ${p}`);
      v += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) return v;
    }
  };
  while (p < body.length) {
    const key = readVarint();
    const wire = key & 7;
    if (wire === 0) readVarint();
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      const len = readVarint();
      const list = out.get(key >> 3) ?? [];
      list.push(body.subarray(p, p + len));
      out.set(key >> 3, list);
      p += len;
    } else throw new Error(`wire type ${wire} at ${p}`);
  }
  return out;
}

const identity = (b: Buffer): Buffer => b;

export class RawEtcd {
  private readonly client: grpc.Client;

  /** `tls`: PEM bytes of the CA and of the client certificate and key, for an https client URL. */
  constructor(endpoint: string, tls?: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer }) {
    const creds =
      tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
    this.client = new grpc.Client(endpoint, creds, { "grpc.max_send_message_length": 8 * 1024 * 1024 });
  }

  /** One unary call to etcdserverpb.<service>/<method>; `token` goes in the metadata as etcd's clients send it. */
  call(service: "Auth" | "KV" | "Maintenance", method: string, body: Buffer, token?: string): Promise<RawReply> {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set("token", token);
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        `/etcdserverpb.${service}/${method}`,
        identity,
        identity,
        body,
        md,
        { deadline: Date.now() + 30_000 },
        (err, res) =>
          resolve(
            err !== null
              ? { ok: false, code: err.code, details: err.details }
              : { ok: true, body: res ?? Buffer.alloc(0) },
          ),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
