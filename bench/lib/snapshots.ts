import path from "node:path";
import type { BenchContext } from "./context";
import type { BenchMaster, DatasetInfo } from "./dataset";
import { loadBake, type BakeProgress, type BakeResult, type Loaded } from "./ours";
import { onCleanup } from "./cleanup";
import { makeDir, removeDir } from "./proc";

export interface OurSnapshot {
  /** Snapshot dir: pgdata/ + snapshot.json. */
  dir: string;
  elapsedMs: number;
  pgdataBytes: number;
  result: BakeResult;
  /** Duration of each bake phase (connect, dump, restore, freeze, verify, image, install), ms. */
  phases: Record<string, number>;
  /** No-op for a snapshot shared through the context (removed at the end of the run). */
  remove(): void;
}

/** Runs our bake of the bench database into a fresh dir under workRoot (B4 times this; others reuse it). */
export async function bakeOnce(master: BenchMaster, workRoot: string, opts: { jobs?: number; image?: boolean } = {}): Promise<Loaded<OurSnapshot>> {
  const mod = loadBake();
  if (!mod.ok) return mod;
  const parent = makeDir(workRoot, "cndb-bench-snap-");
  const remove = onCleanup(`snapshot ${parent}`, () => removeDir(parent));
  try {
    const phases: Record<string, number> = {};
    const result = await mod.value.bake({
      source: master.url,
      out: path.join(parent, "snapshot"),
      jobs: opts.jobs,
      image: opts.image,
      onProgress: (e: BakeProgress) => {
        if (e.kind === "end") phases[e.phase] = e.phaseElapsedMs;
      },
    });
    return {
      ok: true,
      value: { dir: result.dir, elapsedMs: result.elapsedMs, pgdataBytes: result.manifest.pgdataBytes, result, phases, remove: () => void remove() },
    };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** One baked snapshot per dataset size per run, shared by B1, B2 and B3. */
export async function bakeSnapshot(ctx: BenchContext, master: BenchMaster, info: DatasetInfo): Promise<Loaded<OurSnapshot>> {
  try {
    const snap = await ctx.once(`snapshot:${info.targetMB}`, async () => {
      const r = await bakeOnce(master, ctx.workRoot);
      if (!r.ok) throw new Unavailable(r.reason);
      ctx.log(`baked ${info.label} in ${(r.value.elapsedMs / 1000).toFixed(1)} s`);
      return { value: { ...r.value, remove: () => undefined }, close: r.value.remove };
    });
    return { ok: true, value: snap };
  } catch (e) {
    if (e instanceof Unavailable) return { ok: false, reason: e.message };
    return { ok: false, reason: `the bake failed: ${(e as Error).message.split("\n")[0]}` };
  }
}

class Unavailable extends Error {}
