// The harness's one set of summary statistics over plain arrays of measurements (HdrHistograms live in metrics.ts).

/** The value at percentile p (0–100) of an ascending array, nearest-rank (0 when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/** The value at percentile p (0–100) of a list in any order, nearest-rank (0 when empty). */
export function percentileOf(xs: readonly number[], p: number): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    p,
  );
}

/** The median of a list in any order (0 when empty). */
export function median(xs: readonly number[]): number {
  return medianMax(xs).median;
}

/** The median and the maximum of a list in any order (0 for an empty one). */
export function medianMax(xs: readonly number[]): { median: number; max: number } {
  if (xs.length === 0) return { median: 0, max: 0 };
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return {
    median: v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2,
    max: v[v.length - 1] as number,
  };
}
