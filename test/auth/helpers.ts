// Shared setup for the auth tests: a temp LMDB backend with the auth buckets and an AuthStore over it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Backend } from "../../core/backend/backend.js";
import type { WriteView } from "../../core/backend/read_view.js";
import { AUTH_BUCKETS, AuthStore, type AuthStoreOptions } from "../../core/auth/auth_store.js";
import { SimpleTokenProvider, type TokenProvider } from "../../core/auth/tokens.js";

/** bcrypt's cheapest cost for tests; the default cost is exercised in password.test.ts. */
export const TEST_BCRYPT_COST = 4;

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export class Harness {
  readonly dir: string;
  backend: Backend;
  store: AuthStore;
  /** The injected clock, in ms; tests move it. */
  nowMs = 1_000_000;
  private readonly provider: () => TokenProvider;
  private readonly bcryptCost: number;

  /** `bcryptCost`: cost of new hashes (default TEST_BCRYPT_COST). */
  constructor(opts: { provider?: () => TokenProvider; bcryptCost?: number } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "auth-"));
    this.provider = opts.provider ?? (() => new SimpleTokenProvider({ ttlSeconds: 300 }));
    this.bcryptCost = opts.bcryptCost ?? TEST_BCRYPT_COST;
    this.backend = Backend.open(this.dir, { buckets: AUTH_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
    this.store = this.load();
  }

  private load(): AuthStore {
    const opts: AuthStoreOptions = {
      tokenProvider: this.provider(),
      now: () => this.nowMs,
      bcryptCost: this.bcryptCost,
    };
    return this.backend.readNow((view) => AuthStore.load(view, opts));
  }

  /** Runs one apply step in its own write transaction, as the server's batch would. */
  apply(fn: (tx: WriteView, store: AuthStore) => void): Promise<void> {
    return this.backend.batch(undefined, (tx) => fn(tx, this.store));
  }

  /** Closes and reopens the backend and reloads the store from it (a restart). */
  async reopen(): Promise<void> {
    this.store.close();
    await this.backend.close();
    this.backend = Backend.open(this.dir, { buckets: AUTH_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
    this.store = this.load();
  }

  async addUser(name: string, password: string, roles: readonly string[] = []): Promise<void> {
    const hash = await this.store.hashPassword(password);
    await this.apply((tx, s) => {
      s.userAdd(tx, name, hash, false);
      for (const r of roles) s.userGrantRole(tx, name, r);
    });
  }

  /** root user with the root role, then auth enable. */
  async enableWithRoot(password = "rootpw"): Promise<void> {
    await this.addUser("root", password, ["root"]);
    await this.apply((tx, s) => s.enable(tx));
  }

  async close(): Promise<void> {
    this.store.close();
    await this.backend.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
