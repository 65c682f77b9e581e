// Writes against a cluster under faults, done the way etcd's docs allow (api_guarantees.md: a request that failed
// with a timeout or a lost connection may or may not have been applied). A create is a Txn guarded by
// `mod_revision(key) == 0`, so sending it again can never apply it twice: the answer to a resend is "succeeded"
// (this send applied it) or "not succeeded" (an earlier, ambiguous send did). Also: waiting until a cluster has
// committed a write, which is what "ready" means for a test that writes next.
import { ClientCallError, EtcdClient, type ClientOptions } from "../../core/client/index.js";
import { EtcdError, GrpcStatus } from "../../core/errors.js";

/** One failed send of a create: its stable code, and whether etcd answered it (else the client saw no answer). */
export interface SendFailure {
  readonly code: string;
  readonly byServer: boolean;
}

/**
 * isAmbiguous: the send may or may not have been applied. UNAVAILABLE covers a lost connection (the client's
 * ClientCallError) and etcd's own "request timed out" / "leader changed" / "no leader" (EtcdError); a client-side
 * deadline leaves the outcome open too.
 */
export function isAmbiguous(err: unknown): err is EtcdError | ClientCallError {
  if (err instanceof EtcdError) return err.grpcStatus === GrpcStatus.UNAVAILABLE;
  if (err instanceof ClientCallError)
    return err.grpcStatus === GrpcStatus.UNAVAILABLE || err.grpcStatus === GrpcStatus.DEADLINE_EXCEEDED;
  return false;
}

/** create is kube-apiserver's create: a Txn that puts `key` only if it does not exist yet. */
export function create(client: EtcdClient, key: string, value: string = key): Promise<boolean> {
  return client
    .txn({ compare: [{ key, target: "MOD", result: "EQUAL", value: 0n }], success: [{ put: { key, value } }] })
    .then((r) => r.succeeded);
}

/**
 * createOnce sends a guarded create until a send is answered (at most `maxSends`); returns the failed sends.
 * Anything but an ambiguous failure is thrown at once. Whether the key was applied exactly once is for the caller
 * to check (its version is 1).
 */
export async function createOnce(client: EtcdClient, key: string, maxSends = 4): Promise<SendFailure[]> {
  const failures: SendFailure[] = [];
  for (;;) {
    try {
      const created = await create(client, key);
      // A first send that is answered must have created the key; a resend may find an earlier send applied.
      if (failures.length === 0 && !created) throw new Error(`${key} existed before its first create`);
      return failures;
    } catch (err) {
      if (!isAmbiguous(err)) throw err;
      failures.push({ code: err.code, byServer: err instanceof EtcdError });
      if (failures.length >= maxSends)
        throw new Error(
          `${key}: ${maxSends} sends failed: ${failures.map((f) => f.code).join(",")}; last ${String(err)}`,
        );
    }
  }
}

/**
 * waitWritable resolves once each endpoint has answered a guarded create of a key of its own (`/ready/…`): a
 * leader is known and a write commits through it. Ambiguous failures are sent again until `timeoutMs`.
 */
export async function waitWritable(
  endpoints: readonly string[],
  opts: Omit<ClientOptions, "endpoints"> & { readonly timeoutMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 30_000, ...clientOpts } = opts;
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    endpoints.map(async (ep) => {
      const client = new EtcdClient({ callTimeoutMs: 10_000, ...clientOpts, endpoints: [ep] });
      const key = `/ready/${ep}/${Date.now()}`;
      try {
        for (;;) {
          try {
            await create(client, key); // true or false (an earlier send applied it): either way a write committed
            return;
          } catch (err) {
            if (!isAmbiguous(err) || Date.now() > deadline)
              throw new Error(`${ep} took no write within ${timeoutMs} ms: ${String(err)}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        client.close();
      }
    }),
  );
}
