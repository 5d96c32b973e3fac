/** Order statistics over repeated samples: the median and spread every table in RESULTS.md shows. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** 25th and 75th percentiles (linear interpolation between closest ranks). */
  p25: number;
  p75: number;
  mean: number;
}

/** Linear-interpolated quantile of sorted values, q in [0, 1]. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (q < 0 || q > 1) throw new Error(`quantile: q must be within [0, 1], got ${q}`);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN, p25: NaN, p75: NaN, mean: NaN };
  return {
    n: s.length,
    median: quantile(s, 0.5),
    min: s[0],
    max: s[s.length - 1],
    p25: quantile(s, 0.25),
    p75: quantile(s, 0.75),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** median(arm) / median(baseline); NaN when either is missing or the baseline is 0. */
export function ratio(arm: Summary, baseline: Summary): number {
  if (!(baseline.n > 0 && arm.n > 0) || baseline.median === 0) return Number.NaN;
  return arm.median / baseline.median;
}

/**
 * The round order for interleaved A/B runs: every round runs each arm once, and the starting arm
 * rotates (ABC, BCA, CAB, ...) so no arm always runs first, right after a cold start or a heavier arm.
 */
export function roundOrder<T>(arms: readonly T[], round: number): T[] {
  if (arms.length === 0) return [];
  const k = round % arms.length;
  return [...arms.slice(k), ...arms.slice(0, k)];
}

/** Latency percentile (e.g. 0.99) of raw latencies in ms. */
export function percentile(latencies: readonly number[], q: number): number {
  return quantile([...latencies].sort((a, b) => a - b), q);
}

/**
 * True when the two sample ranges do not overlap, with at least 3 samples each: a difference the
 * rounds' own spread cannot explain (with fewer rounds nothing is claimed).
 */
export function separated(a: Summary, b: Summary): boolean {
  return a.n >= 3 && b.n >= 3 && (a.max < b.min || b.max < a.min);
}
