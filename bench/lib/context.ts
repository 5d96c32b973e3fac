import { writeFileSync } from "node:fs";
import type { BenchMaster, DatasetInfo } from "./dataset";
import { loadDataset, startMaster } from "./dataset";
import { run } from "./proc";
import type { ResultTable } from "./report";
import { roundOrder } from "./stats";

export const SIZE_NAMES = ["small", "medium", "large"] as const;
export type SizeName = (typeof SIZE_NAMES)[number];

/** What a --size means for every benchmark. `small` keeps the whole default run near 10 min on 2 cores. */
export interface SizeProfile {
  /** The dataset most benchmarks use (MB on disk). */
  datasetMB: number;
  /** The sizes benchmarks that scale with data (B1 scale-out, B6 propagation) run at. */
  scaleSizesMB: number[];
  /** Seconds of each pgbench run (B2) and of each load-generator run (B5). */
  pgbenchSeconds: number;
  loadSeconds: number;
  rounds: number;
}

export const PROFILES: Record<SizeName, SizeProfile> = {
  small: { datasetMB: 100, scaleSizesMB: [100, 500], pgbenchSeconds: 5, loadSeconds: 5, rounds: 3 },
  medium: { datasetMB: 500, scaleSizesMB: [100, 500], pgbenchSeconds: 10, loadSeconds: 10, rounds: 5 },
  large: { datasetMB: 500, scaleSizesMB: [100, 500, 2000], pgbenchSeconds: 20, loadSeconds: 15, rounds: 5 },
};

export function describeProfiles(): string {
  return SIZE_NAMES.map((n) => {
    const p = PROFILES[n];
    return `\`${n}\`: ${p.datasetMB} MB dataset, B1/B6 at ${p.scaleSizesMB.map((m) => (m >= 1000 ? `${m / 1000} GB` : `${m} MB`)).join(" / ")}, ${p.pgbenchSeconds} s per pgbench run, ${p.loadSeconds} s per load run, ${p.rounds} rounds`;
  }).join("; ");
}

export interface BenchOutput {
  datasets: DatasetInfo[];
  tables: ResultTable[];
  skipped: { arm: string; reason: string }[];
  notes: string[];
}

/** What a reading is written from (also when RESULTS.md is regenerated from stored results). */
export type Findings = Pick<BenchOutput, "tables" | "skipped">;

export interface Bench {
  id: string;
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<BenchOutput>;
  /** The honest "what the numbers say" paragraph, written from the numbers (worse results named). */
  reading(r: Findings): string[];
}

/** Shared by every benchmark of one run: options, log, and things built once (masters, snapshots). */
export class BenchContext {
  private memo = new Map<string, Promise<unknown>>();
  private closers: { key: string; close: () => Promise<void> | void }[] = [];

  constructor(
    readonly size: SizeName,
    readonly profile: SizeProfile,
    readonly rounds: number,
    readonly workRoot: string,
    /** Drop the OS page cache before each cold-start sample (B1, B3): needs root, slows the whole machine. */
    readonly dropCaches = false,
  ) {}

  /** Before a sample that should start cold: sync and drop the page cache when --drop-caches was given. */
  async coldStart(): Promise<void> {
    if (!this.dropCaches) return;
    await run("sync", []);
    writeFileSync("/proc/sys/vm/drop_caches", "3\n");
  }

  log(msg: string): void {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  }

  /** Builds something once per run (a failed build is retried next time); close() undoes it at the end. */
  once<T>(key: string, make: () => Promise<{ value: T; close: () => Promise<void> | void }>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) {
      p = make().then(({ value, close }) => {
        this.closers.push({ key, close });
        return value;
      });
      this.memo.set(key, p);
      p.catch(() => this.memo.delete(key));
    }
    return p;
  }

  /** A running master holding the pgbench dataset nearest targetMB (started and loaded on first use). */
  dataset(targetMB: number): Promise<{ master: BenchMaster; info: DatasetInfo }> {
    return this.once(`master:${targetMB}`, async () => {
      this.log(`loading a ${targetMB} MB dataset`);
      const master = await startMaster(this.workRoot);
      try {
        const info = await loadDataset(master, targetMB >= 1000 ? `${targetMB / 1000} GB` : `${targetMB} MB`, targetMB);
        this.log(`dataset ${targetMB} MB ready in ${(info.loadMs / 1000).toFixed(1)} s (${(info.dbBytes / 2 ** 20).toFixed(0)} MiB)`);
        return { value: { master, info }, close: () => master.stop() };
      } catch (e) {
        await master.stop();
        throw e;
      }
    });
  }

  /** Undoes everything built with once(), newest first. */
  async close(): Promise<void> {
    for (const c of this.closers.splice(0).reverse()) {
      try {
        await c.close();
      } catch (e) {
        this.log(`closing ${c.key} failed: ${(e as Error).message}`);
      }
    }
    this.memo.clear();
  }
}

/** Raw samples keyed by table and arm. */
export class Samples {
  private data = new Map<string, Map<string, number[]>>();

  add(table: string, arm: string, value: number): void {
    let t = this.data.get(table);
    if (!t) this.data.set(table, (t = new Map()));
    let a = t.get(arm);
    if (!a) t.set(arm, (a = []));
    a.push(value);
  }

  get(table: string, arm: string): number[] {
    return this.data.get(table)?.get(arm) ?? [];
  }

  /** A table over arms (and groups: one key per group), arms without samples left out. */
  table(
    spec: Omit<ResultTable, "arms"> & { arms: readonly { arm: string; note?: string }[]; groups: readonly { key: string; group?: string }[] },
  ): ResultTable {
    const arms = spec.groups.flatMap(({ key, group }) =>
      spec.arms.map((a) => ({ arm: a.arm, note: a.note, group, samples: this.get(key, a.arm) })).filter((a) => a.samples.length > 0),
    );
    return { title: spec.title, unit: spec.unit, better: spec.better, baseline: spec.baseline, groupLabel: spec.groupLabel, arms };
  }
}

/**
 * Runs `rounds` interleaved rounds: each round calls fn once per arm, the starting arm rotating. An arm
 * that throws is dropped from later rounds and reported in `skipped` (one broken arm must not sink the run).
 */
export async function interleave(
  ctx: BenchContext,
  arms: string[],
  rounds: number,
  fn: (arm: string, round: number) => Promise<void>,
  skipped: { arm: string; reason: string }[],
): Promise<void> {
  const live = new Set(arms);
  for (let r = 0; r < rounds; r++) {
    for (const arm of roundOrder(arms, r)) {
      if (!live.has(arm)) continue;
      try {
        await fn(arm, r);
      } catch (e) {
        live.delete(arm);
        const reason = `failed in round ${r + 1}: ${(e as Error).message.split("\n")[0]}`;
        ctx.log(`${arm}: ${reason}`);
        skipped.push({ arm, reason });
      }
    }
  }
}
