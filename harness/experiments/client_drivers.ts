// The two clients the failover benchmark drives through one small interface: etcd-ts's EtcdClient and the `etcd3` npm
// package (1.x). Each gives put/get, one prefix watch whose events are counted by revision, and the endpoint the
// experiment should kill: for EtcdClient its current endpoint (the round-robin balancer's one), for etcd3 the
// member serving its watch stream (etcd3 sends each unary call to a host of a reshuffled list, so no endpoint is
// "the" connected one; the watch stream is the one long-lived connection it has).
import { Etcd3, type IOptions } from "etcd3";
import { EtcdClient, errorCode, type TlsOptions } from "../../core/client/index.js";

export const CLIENT_KINDS = ["EtcdClient", "etcd3"] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** One watch event as the benchmark counts it: the revision and when it arrived (performance.now() ms). */
export interface SeenEvent {
  readonly revision: bigint;
  readonly atMs: number;
}

export interface Driver {
  readonly kind: ClientKind;
  put(key: string, value: Buffer): Promise<bigint>;
  get(key: string): Promise<void>;
  /** Opens one watch on `prefix` from `startRevision`; every PUT event is appended to `events`. */
  watch(prefix: string, startRevision: bigint, events: SeenEvent[]): Promise<void>;
  /** The endpoint a kill should hit now (see the file comment). */
  victim(): Promise<string>;
  /** A stable code for an error this client threw. */
  codeOf(err: unknown): string;
  close(): Promise<void>;
}

export interface DriverOptions {
  readonly endpoints: readonly string[];
  readonly tls: TlsOptions | undefined;
  readonly dialTimeoutMs: number;
  readonly callTimeoutMs: number;
}

/** makeDriver builds the client of `kind` for the cluster's endpoints. */
export function makeDriver(kind: ClientKind, o: DriverOptions): Driver {
  return kind === "EtcdClient" ? ours(o) : theirs(o);
}

function ours(o: DriverOptions): Driver {
  const client = new EtcdClient({
    endpoints: o.endpoints,
    dialTimeoutMs: o.dialTimeoutMs,
    callTimeoutMs: o.callTimeoutMs,
    ...(o.tls === undefined ? {} : { tls: o.tls }),
  });
  let stop: (() => void) | undefined;
  return {
    kind: "EtcdClient",
    put: async (key, value) => (await client.put(key, value)).header.revision,
    get: async (key) => void (await client.get(key)),
    watch: async (prefix, startRevision, events) => {
      const w = client.watch(prefix, { prefix: true, startRevision });
      await w.created;
      stop = () => w.cancel();
      void (async () => {
        for await (const batch of w)
          for (const e of batch.events)
            if (e.type === "PUT") events.push({ revision: e.kv.modRevision, atMs: performance.now() });
      })().catch(() => undefined); // the watch ends with close(); its errors are what the counts show
    },
    victim: () => Promise.resolve(client.connection.currentEndpoint()),
    codeOf: (err) => errorCode(err),
    close: () => {
      stop?.();
      client.close();
      return Promise.resolve();
    },
  };
}

/** mapMembers fills member id (decimal text, as etcd3 decodes a uint64) → endpoint from each member's Status. */
async function mapMembers(o: DriverOptions, into: Map<string, string>): Promise<void> {
  await Promise.all(
    o.endpoints.map(async (ep) => {
      const c = new EtcdClient({
        endpoints: [ep],
        callTimeoutMs: o.callTimeoutMs,
        ...(o.tls === undefined ? {} : { tls: o.tls }),
      });
      try {
        into.set((await c.status()).header.memberId.toString(), ep);
      } finally {
        c.close();
      }
    }),
  );
}

/** etcd3's hosts take a scheme; its credentials are one bundle like ours. */
function theirs(o: DriverOptions): Driver {
  const toBuf = (b: Buffer | string | undefined): Buffer | undefined => (b === undefined ? undefined : Buffer.from(b));
  const opts: IOptions = {
    hosts: o.endpoints.map((e) => (e.includes("://") ? e : `http://${e}`)),
    dialTimeout: o.dialTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + o.callTimeoutMs }),
    ...(o.tls === undefined
      ? {}
      : {
          credentials: {
            rootCertificate: toBuf(o.tls.ca) ?? Buffer.alloc(0),
            ...(o.tls.key === undefined ? {} : { privateKey: toBuf(o.tls.key)!, certChain: toBuf(o.tls.cert)! }),
          },
        }),
  };
  const client = new Etcd3(opts);
  /** Member id (decimal text) of the member that answered the watch's latest create. */
  let watchMember = "";
  let cancel: (() => Promise<void>) | undefined;
  const memberEndpoints = new Map<string, string>();
  return {
    kind: "etcd3",
    put: async (key, value) => BigInt((await client.put(key).value(value).exec()).header.revision),
    get: async (key) => void (await client.get(key).exec()),
    watch: async (prefix, startRevision, events) => {
      // watcher() attaches at once; the listeners go on before its first 'connected' (the create answer) fires.
      const w = client.watch().prefix(prefix).startRevision(startRevision.toString()).watcher();
      const connected = new Promise<void>((resolve, reject) => {
        w.once("connected", () => resolve());
        w.once("error", reject);
      });
      w.on("connected", (res: { header: { member_id: string } }) => (watchMember = String(res.header.member_id)));
      w.on("put", (kv) => events.push({ revision: BigInt(kv.mod_revision), atMs: performance.now() }));
      w.on("error", () => undefined); // what it costs shows in the events it did or did not deliver
      cancel = () => w.cancel();
      await connected;
    },
    victim: async () => {
      if (memberEndpoints.size === 0) await mapMembers(o, memberEndpoints);
      const ep = memberEndpoints.get(watchMember);
      if (ep === undefined)
        throw new Error(
          `etcd3's watch is on member ${watchMember || "(none)"}, not one of ${[...memberEndpoints.keys()].join(",")}`,
        );
      return ep;
    },
    codeOf: (err) => (err instanceof Error ? err.constructor.name : typeof err),
    close: async () => {
      await cancel?.().catch(() => undefined);
      client.close();
    },
  };
}
