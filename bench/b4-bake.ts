import os from "node:os";
import path from "node:path";
import pg from "pg";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { BENCH_DB } from "./lib/dataset";
import { loadBake, loadChecksum, loadImage } from "./lib/ours";
import { diskBytes, makeDir, removeDir } from "./lib/proc";
import { dumpMaster, restoreDump } from "./lib/replicas";
import { fmtBytes, tableSummaries } from "./lib/report";
import { bakeOnce } from "./lib/snapshots";

const JOBS = Math.max(1, Math.min(os.cpus().length, 8));
const RAW = "raw pg_dump + pg_restore";
const OURS = "cndb bake";
const PHASES = ["dump", "restore", "freeze", "verify", "other", "total"] as const;

/** B4: our bake's phases per GB against the raw dump/restore baseline; image layer size vs PGDATA. */
export const b4: Bench = {
  id: "B4",
  name: "bake",
  title: "bake: time per phase per GB against raw pg_dump -Fd -j | pg_restore -j, and image layer size",
  reading,
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const out: BenchOutput = { datasets: [], tables: [], skipped: [], notes: [] };
    // per-GB rates want the largest size of the profile (fixed costs weigh less)
    const sizeMB = Math.max(...ctx.profile.scaleSizesMB, ctx.profile.datasetMB);
    const { master, info } = await ctx.dataset(sizeMB);
    out.datasets.push(info);
    const gb = info.dbBytes / 1e9;
    const perGb = (ms: number) => ms / 1000 / gb;
    const bakeMod = loadBake();
    const imageMod = loadImage();
    const arms = [RAW];
    if (bakeMod.ok) arms.push(OURS);
    else out.skipped.push({ arm: OURS, reason: bakeMod.reason });
    if (!imageMod.ok) out.skipped.push({ arm: "image layer", reason: imageMod.reason });
    const t = new Samples(); // per-GB phase times
    const img = new Samples();
    await interleave(ctx, arms, ctx.rounds, async (arm, round) => {
      if (arm === RAW) {
        const dump = await dumpMaster(master, ctx.workRoot, JOBS);
        try {
          const rs = await restoreDump(dump, ctx.workRoot, JOBS);
          await rs.stop();
          const other = rs.phases.initdb + rs.phases.start;
          t.add("dump", RAW, perGb(dump.ms));
          t.add("restore", RAW, perGb(rs.phases.restore));
          t.add("other", RAW, perGb(other));
          t.add("total", RAW, perGb(dump.ms + rs.phases.restore + other));
        } finally {
          dump.remove();
        }
        return;
      }
      const r = await bakeOnce(master, ctx.workRoot, { jobs: JOBS });
      if (!r.ok) throw new Error(r.reason);
      const snap = r.value;
      try {
        const p = snap.phases;
        for (const ph of ["dump", "restore", "freeze", "verify"] as const) if (p[ph] !== undefined) t.add(ph, OURS, perGb(p[ph]));
        const known = (p.dump ?? 0) + (p.restore ?? 0) + (p.freeze ?? 0) + (p.verify ?? 0);
        t.add("other", OURS, perGb(snap.elapsedMs - known));
        t.add("total", OURS, perGb(snap.elapsedMs));
        img.add("size", "PGDATA (du)", await diskBytes(path.join(snap.dir, "pgdata")));
        if (imageMod.ok) {
          for (const compress of round % 2 ? [true, false] : [false, true]) {
            const layoutDir = path.join(makeDir(ctx.workRoot, "cndb-bench-image-"), "layout");
            try {
              const t0 = performance.now();
              const w = await imageMod.value.writeImageLayout({ snapshotDir: snap.dir, manifest: snap.result.manifest, out: layoutDir, compress });
              const arm = compress ? "layer, gzip (bake default)" : "layer, uncompressed tar";
              img.add("ms", arm, performance.now() - t0);
              img.add("size", arm, w.layerSize);
            } finally {
              removeDir(path.dirname(layoutDir));
            }
          }
        }
      } finally {
        snap.remove();
      }
    }, out.skipped);

    const armSpecs = [
      { arm: RAW, note: `\`pg_dump -Fd -j ${JOBS} -Z0\` then initdb + start + \`pg_restore -j ${JOBS}\` (the same dump flags as the bake; "other" is initdb + start)` },
      { arm: OURS, note: `our \`bake({ jobs: ${JOBS} })\`: dump, restore, VACUUM FREEZE + checkpoint + sealing ("freeze"), verification on a started standby ("verify"); "other" is connect, checksums not overlapped with the dump, and install` },
    ];
    out.tables.push(
      t.table({
        title: `Seconds per GB of database (${fmtBytes(info.dbBytes)} here), by phase`,
        unit: "s/GB", better: "lower", baseline: RAW, groupLabel: "phase", arms: armSpecs,
        groups: PHASES.map((ph) => ({ key: ph, group: ph })),
      }),
    );
    if (imageMod.ok && bakeMod.ok) {
      const layerArms = [
        { arm: "PGDATA (du)", note: "the baked PGDATA on disk" },
        { arm: "layer, uncompressed tar", note: "`writeImageLayout({ compress: false })`: the deterministic tar of pgdata/ + snapshot.json" },
        { arm: "layer, gzip (bake default)", note: "`writeImageLayout()` with its default compression (gzip level 1)" },
      ];
      out.tables.push(
        img.table({ title: "Image data layer size against the PGDATA size", unit: "bytes", better: "lower", baseline: "PGDATA (du)", arms: layerArms, groups: [{ key: "size" }] }),
        img.table({ title: "Time to write the image layout", unit: "ms", better: "lower", baseline: "layer, uncompressed tar", arms: layerArms.slice(1), groups: [{ key: "ms" }] }),
      );
    }
    // Diagnostic: the bake's checksum pass alone on the master (it runs beside pg_dump in the dump phase,
    // and again on the baked standby in the verify phase).
    const ck = loadChecksum();
    if (ck.ok) {
      const tables = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"];
      const c = new pg.Client(master.server.socketConfig(BENCH_DB));
      await c.connect();
      let ms: number;
      try {
        await c.query(ck.value.CHECKSUM_SESSION);
        const t0 = performance.now();
        for (const name of tables) await c.query(ck.value.checksumSql({ schema: "public", name, kind: "r" }));
        ms = performance.now() - t0;
        // the earlier md5-based hash, and the row-to-text conversion alone, for comparison
        const t1 = performance.now();
        for (const name of tables) await c.query(ck.value.checksumSql({ schema: "public", name, kind: "r" }, "md5sum64"));
        const md5Ms = performance.now() - t1;
        const t2 = performance.now();
        for (const name of tables) await c.query(`SELECT count(*), sum(length(t::text)) FROM ONLY public.${name} AS t`);
        const textMs = performance.now() - t2;
        out.notes.push(
          `The bake's checksum SQL alone (\`${ck.value.CHECKSUM_ALGORITHM}\`: hashtextextended of every row's text, one connection, the same tables) took ${(ms / 1000).toFixed(1)} s here, ${perGb(ms).toFixed(1)} s/GB (one sample): the bake runs it on the master during the dump and again on the baked standby to verify.` +
            ` The earlier md5-based form (\`md5sum64\`) took ${(md5Ms / 1000).toFixed(1)} s, and the row-to-text conversion alone ${(textMs / 1000).toFixed(1)} s.`,
        );
      } finally {
        await c.end();
      }
    }
    out.notes.push(
      `Both arms use ${JOBS} jobs on ${os.cpus().length} cores, read the same master over loopback and write to the same file system.`,
      "pgbench tables are highly compressible (the filler columns are blank), so the gzip ratio here is optimistic for real data.",
    );
    return out;
  },
};

function reading(out: Findings): string[] {
  const lines: string[] = [];
  const rows = tableSummaries(out.tables[0]);
  const get = (arm: string, ph: string) => rows.find((r) => r.arm.arm === arm && r.arm.group === ph);
  const total = get(OURS, "total");
  if (total && Number.isFinite(total.r)) {
    lines.push(
      `The bake takes ${total.r.toFixed(1)}× the time of a raw dump + restore of the same data (${total.s.median.toFixed(1)} s/GB against ${get(RAW, "total")!.s.median.toFixed(1)} s/GB).` +
        (total.r > 1.05 ? " That is worse, and it is the price of what the raw pipeline does not do:" : ""),
    );
    const extra = ["freeze", "verify", "other"]
      .map((ph) => get(OURS, ph))
      .filter((r): r is NonNullable<typeof r> => !!r && r.s.n > 0)
      .map((r) => `${r.arm.group} ${r.s.median.toFixed(1)} s/GB`);
    if (extra.length) lines.push(`freezing (so reads never write hint bits), verification against the master's checksums, sealing: ${extra.join(", ")}.`);
    const d = get(OURS, "dump");
    const rs = get(OURS, "restore");
    if (d && rs) lines.push(`Dump and restore on their own run at ${d.r.toFixed(2)}× and ${rs.r.toFixed(2)}× the raw tools' time.`);
    if (d && d.r > 1.5) {
      lines.push(
        "The dump phase is the largest gap: besides pg_dump, the bake computes the master-side checksums (a hash of every row's text, see the note) in the same snapshot at the same time, so the master does two full passes over the data and shares its cores between them.",
        "The pass is already close to the cost of converting each row to text; what is left is the second pass itself, the price of verifying against the master.",
      );
    }
  }
  const size = out.tables[1];
  if (size) {
    for (const r of tableSummaries(size).filter((x) => x.arm.arm !== size.baseline && Number.isFinite(x.r))) {
      lines.push(`The ${r.arm.arm} is ${(r.r * 100).toFixed(0)}% of the PGDATA.`);
    }
  }
  return lines;
}
