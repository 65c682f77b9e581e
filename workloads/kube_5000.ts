// The scaled 5000-node generator: a preloaded keyspace (nodes, node leases, namespaces, pods, deployments,
// replicasets, services, endpoints, clusterroles/bindings), then a "storm" phase where `listers` clients loop
// cluster-scope LIST pods (kubelets and controllers starting: "very beginning of the test, a lot of expensive
// LIST pods", etcd-io/etcd#10523) and a "steady" phase with occasional LISTs. Background writes run in both:
// node lease renewals, node status, pod churn with events on 1-h leases, endpoints, leader election, object
// counts, and the victim: POST clusterrolebindings at 1/s, each deleted 30 s later. `scale` shrinks object
// counts and per-node rates together; object sizes and the long-read pattern stay at full fidelity.
import { CADENCE_SECONDS, EVENTS_PER_POD, EVENT_TTL_SECONDS, FULL_SCALE, sizeOf } from "./kube_facts.js";
import { mulberry32, type Rng } from "./rng.js";
import { TRACE_FORMAT, type Trace, type TraceOp } from "./trace.js";

export interface Kube5000Options {
  readonly seed: number;
  /** Fraction of the 5000-node cluster (0.1 = 500 nodes, 15,000 pods). */
  readonly scale: number;
  readonly stormSeconds: number;
  readonly steadySeconds: number;
  /** Concurrent clients looping LIST pods during the storm (estimate: 4; the source gives no count). */
  readonly listers: number;
  /**
   * Paced listers: each starts one LIST every `listEvery` seconds during the storm, open loop up to
   * `listInFlight` LISTs per lister (latency from the intended start), so every target is asked for the same
   * read work; a LIST that cannot start before the storm ends is skipped and counted. Absent = looping listers
   * (back to back, each waits for its previous LIST).
   */
  readonly listEvery?: number;
  /** Paced listers: LISTs of one lister in flight at most (default 2). */
  readonly listInFlight?: number;
  /** A second storm phase, "storm-closed", after the first, with looping listers (0 or absent = none). */
  readonly closedStormSeconds?: number;
  /** LIST page size; absent = one unpaginated Range, as a consistent LIST without limit. */
  readonly listPage?: number;
  /**
   * How many of the storm's listers list in pages of `listPage` (500 when absent), continued at the first page's
   * revision as kube-apiserver pages through etcd; the others send one unpaginated Range. Absent: every lister
   * follows `listPage`.
   */
  readonly pagedListers?: number;
  /** POST clusterrolebindings per second (estimate; the source gives no rate). */
  readonly victimPerSecond: number;
}

export const KUBE_5000_DEFAULTS: Kube5000Options = {
  seed: 1,
  scale: 0.1,
  stormSeconds: 30,
  steadySeconds: 30,
  listers: 4,
  victimPerSecond: 1,
};

const pad = (n: number, w: number): string => String(n).padStart(w, "0");

class Builder {
  readonly ops: { op: TraceOp; seq: number }[] = [];
  private seq = 0;
  constructor(
    readonly opts: Kube5000Options,
    readonly rng: Rng,
  ) {}
  /** End of the storm phases (the paced or looping storm, then the optional looping one). */
  get stormEnd(): number {
    return this.opts.stormSeconds + (this.opts.closedStormSeconds ?? 0);
  }
  get end(): number {
    return this.stormEnd + this.opts.steadySeconds;
  }
  phaseOf(t: number): string {
    if (t < this.opts.stormSeconds) return "storm";
    return t < this.stormEnd ? "storm-closed" : "steady";
  }
  add(op: Omit<TraceOp, "phase"> & { phase?: string }): void {
    if (op.phase !== "preload" && op.t >= this.end) return;
    const t = Math.round(op.t * 1000) / 1000;
    this.ops.push({ op: { ...op, t, phase: op.phase ?? this.phaseOf(t) }, seq: this.seq++ });
  }
  /** every: events at a fixed period from a random offset, for the whole run. */
  every(periodS: number, fn: (t: number, k: number) => void): void {
    const offset = this.rng.next() * periodS;
    for (let k = 0, t = offset; t < this.end; k++, t = offset + k * periodS) fn(t, k);
  }
}

interface Counts {
  nodes: number;
  namespaces: number;
  podsPerNs: number;
  deployments: number;
  services: number;
}

function counts(scale: number): Counts {
  const nodes = Math.max(1, Math.round(FULL_SCALE.nodes * scale));
  const pods = nodes * FULL_SCALE.podsPerNode;
  const namespaces = Math.max(1, Math.ceil(pods / FULL_SCALE.podsPerNamespace));
  return {
    nodes,
    namespaces,
    podsPerNs: Math.ceil(pods / namespaces),
    deployments: Math.max(1, Math.round(FULL_SCALE.deployments * scale)),
    services: Math.max(1, Math.round(FULL_SCALE.services * scale)),
  };
}

function preload(b: Builder, c: Counts): void {
  const p = (resource: string, name: string, ns?: string): void =>
    b.add({
      t: 0,
      verb: "create",
      resource,
      ...(ns === undefined ? {} : { ns }),
      name,
      size: sizeOf(resource),
      phase: "preload",
    });
  for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) p("namespaces", ns);
  for (let n = 0; n < c.namespaces; n++) p("namespaces", `test-${pad(n, 2)}`);
  for (let i = 0; i < c.nodes; i++) {
    p("nodes", `node-${pad(i, 4)}`);
    p("leases", `node-${pad(i, 4)}`, "kube-node-lease");
  }
  for (let n = 0; n < c.namespaces; n++)
    for (let i = 0; i < c.podsPerNs; i++) p("pods", `pod-${pad(i, 5)}`, `test-${pad(n, 2)}`);
  for (let i = 0; i < c.deployments; i++) {
    const ns = `test-${pad(i % c.namespaces, 2)}`;
    p("deployments", `deploy-${pad(i, 5)}`, ns);
    p("replicasets", `deploy-${pad(i, 5)}-rs`, ns);
  }
  for (let i = 0; i < c.services; i++) {
    const ns = `test-${pad(i % c.namespaces, 2)}`;
    p("services", `svc-${pad(i, 5)}`, ns);
    p("endpoints", `svc-${pad(i, 5)}`, ns);
  }
  for (const name of ["kube-scheduler", "kube-controller-manager"]) p("endpoints", name, "kube-system");
  for (let i = 0; i < FULL_SCALE.clusterRoles; i++) p("clusterroles", `role-${pad(i, 3)}`);
  for (let i = 0; i < FULL_SCALE.clusterRoleBindings; i++) p("clusterrolebindings", `binding-${pad(i, 3)}`);
}

function nodeHeartbeats(b: Builder, c: Counts): void {
  for (let i = 0; i < c.nodes; i++) {
    const name = `node-${pad(i, 4)}`;
    b.every(CADENCE_SECONDS.nodeLeaseRenew, (t) =>
      b.add({ t, verb: "update", resource: "leases", ns: "kube-node-lease", name, size: sizeOf("leases") }),
    );
    b.every(CADENCE_SECONDS.nodeStatus, (t) =>
      b.add({ t, verb: "update", resource: "nodes", name, size: sizeOf("nodes") }),
    );
  }
}

function podChurn(b: Builder, c: Counts): void {
  const rate = FULL_SCALE.podThroughputPerSecond * b.opts.scale;
  b.every(1 / rate, (t, k) => {
    const ns = `test-${pad(b.rng.int(c.namespaces), 2)}`;
    const name = `churn-${pad(k, 6)}`;
    const pod = { verb: "update", resource: "pods", ns, name, size: sizeOf("pods") } as const;
    b.add({ t, verb: "create", resource: "pods", ns, name, size: sizeOf("pods") });
    b.add({ ...pod, t: t + 0.5 }); // binding (scheduler)
    b.add({ ...pod, t: t + 2 }); // kubelet status
    b.add({ ...pod, t: t + 4 }); // kubelet status (running)
    for (let e = 0; e < EVENTS_PER_POD; e++) {
      const ev = `${name}.${(k * EVENTS_PER_POD + e).toString(16).padStart(8, "0")}`;
      b.add({
        t: t + 0.5 + e * 0.8,
        verb: "create",
        resource: "events",
        ns,
        name: ev,
        size: sizeOf("events"),
        ttl: EVENT_TTL_SECONDS,
      });
    }
  });
}

function controlPlane(b: Builder, c: Counts): void {
  const endpointsRate = FULL_SCALE.podThroughputPerSecond * b.opts.scale;
  b.every(1 / endpointsRate, (t) => {
    const i = b.rng.int(c.services);
    b.add({
      t,
      verb: "update",
      resource: "endpoints",
      ns: `test-${pad(i % c.namespaces, 2)}`,
      name: `svc-${pad(i, 5)}`,
      size: sizeOf("endpoints"),
    });
  });
  for (const name of ["kube-scheduler", "kube-controller-manager"]) {
    b.every(CADENCE_SECONDS.leaderElectionRetry, (t) => {
      b.add({ t, verb: "get", resource: "endpoints", ns: "kube-system", name });
      b.add({
        t: t + 0.005,
        verb: "update",
        resource: "endpoints",
        ns: "kube-system",
        name,
        size: sizeOf("endpoints"),
      });
    });
  }
  const counted = [
    "pods",
    "nodes",
    "leases",
    "events",
    "endpoints",
    "services",
    "deployments",
    "replicasets",
    "namespaces",
    "clusterroles",
    "clusterrolebindings",
  ];
  for (const resource of counted)
    b.every(CADENCE_SECONDS.countMetricPoll, (t) => b.add({ t, verb: "list", resource, countOnly: true }));
  b.every(1 / b.opts.victimPerSecond, (t, k) => {
    const name = `victim-${pad(k, 6)}`;
    b.add({ t, verb: "create", resource: "clusterrolebindings", name, size: sizeOf("clusterrolebindings") });
    b.add({ t: t + CADENCE_SECONDS.victimDeleteAfter, verb: "delete", resource: "clusterrolebindings", name });
  });
  for (const resource of [
    "pods",
    "nodes",
    "leases",
    "endpoints",
    "services",
    "deployments",
    "replicasets",
    "namespaces",
    "clusterrolebindings",
  ]) {
    b.add({ t: 0, verb: "watch", resource, duration: b.end });
  }
  for (let w = 0; w < 2; w++) b.add({ t: 0, verb: "watch", resource: "events", duration: b.end });
}

/** loopingListers: back-to-back LISTs in [from, until) (one op per 100 ms; the replayer runs a client's ops in order). */
function loopingListers(b: Builder, from: number, until: number, page: { limit?: number }): void {
  for (let l = 0; l < b.opts.listers; l++) {
    for (let t = from + l * 0.05; t < until; t += 0.1) {
      b.add({ t, verb: "list", resource: "pods", client: `lister-${l + 1}`, until, ...listerPage(b, l, page) });
    }
  }
}

/** pacedListers: lister l starts a LIST at l × every / listers + k × every within [0, until), bounded open loop. */
function pacedListers(b: Builder, every: number, until: number, page: { limit?: number }): void {
  const inFlight = b.opts.listInFlight ?? 2;
  for (let l = 0; l < b.opts.listers; l++) {
    const offset = (l * every) / b.opts.listers;
    for (let k = 0; offset + k * every < until; k++) {
      b.add({
        t: offset + k * every,
        verb: "list",
        resource: "pods",
        client: `paced-lister-${l + 1}`,
        inFlight,
        until,
        ...listerPage(b, l, page),
      });
    }
  }
}

/** Lister l's page: the first `pagedListers` page (500 per page unless listPage says otherwise), the rest do not. */
function listerPage(b: Builder, l: number, page: { limit?: number }): { limit?: number } {
  if (b.opts.pagedListers === undefined) return page;
  return l < b.opts.pagedListers ? { limit: b.opts.listPage ?? 500 } : {};
}

function longLists(b: Builder, c: Counts): void {
  const page = b.opts.listPage === undefined ? {} : { limit: b.opts.listPage };
  if (b.opts.listEvery === undefined) loopingListers(b, 0, b.opts.stormSeconds, page);
  else pacedListers(b, b.opts.listEvery, b.opts.stormSeconds, page);
  if (b.stormEnd > b.opts.stormSeconds) loopingListers(b, b.opts.stormSeconds, b.stormEnd, page);
  for (let t = b.stormEnd; t < b.end; t += 30) b.add({ t, verb: "list", resource: "pods", ...page });
  b.every(5, (t) =>
    b.add({ t, verb: "list", resource: "pods", ns: `test-${pad(b.rng.int(c.namespaces), 2)}`, ...page }),
  );
}

/** generateKube5000 builds the trace; it depends only on its options (seeded, no clock, no Math.random). */
export function generateKube5000(partial: Partial<Kube5000Options> = {}): Trace {
  const opts: Kube5000Options = { ...KUBE_5000_DEFAULTS, ...partial };
  if (!(opts.scale > 0 && opts.scale <= 1)) throw new Error(`scale must be in (0, 1], got ${opts.scale}`);
  if (opts.stormSeconds < 0 || opts.steadySeconds <= 0)
    throw new Error(`phases must be >= 0 / > 0 s, got ${opts.stormSeconds}/${opts.steadySeconds}`);
  if (opts.listEvery !== undefined && !(opts.listEvery > 0))
    throw new Error(`listEvery must be > 0 s, got ${opts.listEvery}`);
  if ((opts.closedStormSeconds ?? 0) < 0)
    throw new Error(`closedStormSeconds must be >= 0, got ${opts.closedStormSeconds}`);
  const b = new Builder(opts, mulberry32(opts.seed));
  const c = counts(opts.scale);
  preload(b, c);
  nodeHeartbeats(b, c);
  podChurn(b, c);
  controlPlane(b, c);
  longLists(b, c);
  const ops = b.ops
    .sort(
      (x, y) =>
        (x.op.phase === "preload" ? -1 : 0) - (y.op.phase === "preload" ? -1 : 0) || x.op.t - y.op.t || x.seq - y.seq,
    )
    .map((x) => x.op);
  return {
    header: {
      kind: "header",
      format: TRACE_FORMAT,
      generator: "kube-5000",
      ...opts,
      nodes: c.nodes,
      podsPerNamespace: c.podsPerNs,
      namespaces: c.namespaces,
    },
    ops,
  };
}
