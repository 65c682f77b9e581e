// Published Kubernetes facts the generators use, each with its source (full citations in workloads/README.md
// and ../shared/reference/kube-workload.md). "estimate" marks a number with no direct source.

/** FULL_SCALE: the 5000-node clusterloader2 load test (kubernetes/perf-tests load/config.yaml, thresholds.md). */
export const FULL_SCALE = {
  nodes: 5000,
  podsPerNode: 30, // PODS_PER_NODE; 150,000 pods
  podsPerNamespace: 3000, // NODES_PER_NAMESPACE 100 × 30
  deployments: 16_400, // 328 per namespace × 50 (derived); replicasets the same
  services: 8_250, // half the deployments, rounded up per size class (derived); endpoints the same
  clusterRoles: 60, // kubeadm#1329: 55 items (rounded)
  clusterRoleBindings: 50, // estimate
  systemNamespaces: 4,
  podThroughputPerSecond: 10, // LOAD_TEST_THROUGHPUT
} as const;

/** Object sizes in bytes (protobuf, as stored). */
export const SIZES_BYTES = {
  pods: 1_390, // kubernetes/kubernetes#83020 (5k GCE test, pause pod)
  nodes: 3_465, // kubernetes/kubernetes#83020 (node status Txn value_size)
  leases: 300, // estimate (node lease); leader-election leases 481–511 B (minikube#7314)
  namespaces: 300, // 178–594 B (kubeadm#1329; rancher#22723)
  deployments: 1_024, // estimate
  replicasets: 1_024, // estimate
  services: 600, // estimate
  endpoints: 497, // kubernetes/website#20364 (value_size 497)
  clusterroles: 620, // kubeadm#1329: 34,259 B / 55 items
  clusterrolebindings: 500, // estimate 0.3–0.6 KiB
  events: 500, // 383 B (kubeadm#1329) – 716 B (vscode-openshift-tools#1309)
  configmaps: 6_361, // okd#379
  secrets: 2_500, // etcd-io/etcd#10174
  serviceaccounts: 390, // okd#379
} as const satisfies Record<string, number>;

/** sizeOf returns the stored size of a resource's objects (1 KiB when nothing is known). */
export function sizeOf(resource: string): number {
  return (SIZES_BYTES as Record<string, number>)[resource] ?? 1_024;
}

/** Cadences of the background load (KEP-0009; component-base leader-election defaults; storagebackend config). */
export const CADENCE_SECONDS = {
  nodeLeaseRenew: 10, // KEP-0009: every 10 s
  nodeStatus: 60, // KEP-0009: 1 min in k8s 1.14–1.16
  leaderElectionRetry: 2, // RetryPeriod 2 s, two components → ~1 renew/s
  countMetricPoll: 60, // CountMetricPollPeriod 1 min per resource
  victimDeleteAfter: 30, // kube-workload.md §5 preset (estimate)
} as const;

/** EVENT_TTL_SECONDS: kube-apiserver --event-ttl default (1 h). */
export const EVENT_TTL_SECONDS = 3600;
/** Events per created pod: Scheduled, Pulled, Created, Started, SuccessfulCreate (estimate). */
export const EVENTS_PER_POD = 5;
