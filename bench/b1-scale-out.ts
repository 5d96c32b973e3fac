import os from "node:os";
import { freePort } from "../runtime/pg/ports";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { waitFirstQuery } from "./lib/dataset";
import { bakeSnapshot, type OurSnapshot } from "./lib/snapshots";
import { loadReplica, type OurReplica } from "./lib/ours";
import { diskBytes, makeDir, removeDir } from "./lib/proc";
import { basebackupStandby, dumpMaster, restoreDump, type Dump } from "./lib/replicas";
import { fmtBytes, tableSummaries } from "./lib/report";
import { separated } from "./lib/stats";

/** pg_restore jobs: one per core, as the bake uses. */
const JOBS = Math.max(1, Math.min(os.cpus().length, 8));

const ARMS = {
  basebackup: { arm: "pg_basebackup standby", note: "`pg_basebackup -X stream -R -c fast` from the master, then started as a streaming hot standby (the usual new read replica)" },
  restore: { arm: "pg_restore at start", note: `initdb + start + \`pg_restore -j ${JOBS}\` of a \`pg_dump -Fd -Z0\` taken once beforehand (the dump time is not counted)` },
  overlay: { arm: "baked, overlay", note: "ours: `startReplica` on a baked snapshot, kernel overlay working copy, default warm-up (`files`)" },
  copy: { arm: "baked, copy", note: "ours: `startReplica` on a baked snapshot, full copy working copy (`cp --reflink=auto`), default warm-up" },
} as const;

/** B1: time from "start a new replica" to its first successful query, and what it costs the master. */
export const b1: Bench = {
  id: "B1",
  name: "scale-out",
  title: "scale-out: time to a new replica's first successful query",
  reading,
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const out: BenchOutput = { datasets: [], tables: [], skipped: [], notes: [] };
    const replicaMod = loadReplica();
    const s = new Samples();
    const groups: { key: string; group: string }[] = [];
    const armsSeen = new Set<string>();
    for (const sizeMB of ctx.profile.scaleSizesMB) {
      const { master, info } = await ctx.dataset(sizeMB);
      out.datasets.push(info);
      groups.push({ key: String(sizeMB), group: info.label });
      let dump: Dump | undefined;
      let snap: OurSnapshot | undefined;
      try {
        dump = await dumpMaster(master, ctx.workRoot, JOBS);
        ctx.log(`B1 ${sizeMB} MB: dump ${(dump.ms / 1000).toFixed(1)} s, ${fmtBytes(dump.bytes)}`);
        const arms: string[] = [ARMS.basebackup.arm, ARMS.restore.arm];
        const baked = await bakeSnapshot(ctx, master, info);
        const why = !baked.ok ? baked.reason : !replicaMod.ok ? replicaMod.reason : undefined;
        if (why && !out.skipped.some((x) => x.reason === why)) out.skipped.push({ arm: "baked (both)", reason: why });
        if (!why && baked.ok) {
          snap = baked.value;
          arms.push(ARMS.overlay.arm, ARMS.copy.arm);
        }
        for (const a of arms) armsSeen.add(a);
        const key = (m: string) => `${m}@${sizeMB}`;
        await interleave(ctx, arms, ctx.rounds, async (arm) => {
          await ctx.coldStart();
          const t0 = performance.now();
          if (arm === ARMS.basebackup.arm) {
            const sb = await basebackupStandby(master, ctx.workRoot);
            try {
              await waitFirstQuery(sb.url, info.pgbenchScale);
              s.add(key("ms"), arm, performance.now() - t0);
              s.add(key("master"), arm, sb.masterBytes);
              s.add(key("disk"), arm, await diskBytes(sb.dir));
            } finally {
              await sb.stop();
            }
          } else if (arm === ARMS.restore.arm) {
            const rs = await restoreDump(dump!, ctx.workRoot, JOBS);
            try {
              await waitFirstQuery(rs.url, info.pgbenchScale);
              s.add(key("ms"), arm, performance.now() - t0);
              s.add(key("master"), arm, 0);
              s.add(key("disk"), arm, await diskBytes(rs.dir));
            } finally {
              await rs.stop();
            }
          } else {
            if (!replicaMod.ok || !snap) throw new Error("unreachable");
            const workDir = makeDir(ctx.workRoot, "cndb-bench-replica-");
            let rep: OurReplica | undefined;
            try {
              rep = await replicaMod.value.startReplica({
                snapshot: snap.dir,
                port: await freePort(),
                workDir,
                workingCopy: arm === ARMS.overlay.arm ? "overlay" : "copy",
              });
              await waitFirstQuery(rep.url(), info.pgbenchScale);
              s.add(key("ms"), arm, performance.now() - t0);
              s.add(key("master"), arm, 0);
              // du -x: the overlay's upper dir or the full copy, not the merged mount
              s.add(key("disk"), arm, await diskBytes(workDir));
            } finally {
              await rep?.stop();
              removeDir(workDir);
            }
          }
        }, out.skipped);
        out.notes.push(
          `${info.label}: the \`pg_restore at start\` arm restores a dump taken once (${(dump.ms / 1000).toFixed(1)} s, ${fmtBytes(dump.bytes)} sent by the master, shared by all such replicas); taking it per replica would add both.`,
        );
        if (snap) out.notes.push(`${info.label}: the baked snapshot was made once beforehand (${(snap.elapsedMs / 1000).toFixed(1)} s, see B4); its image layer is pulled from a registry, not from the master.`);
      } finally {
        dump?.remove();
        snap?.remove();
      }
    }
    const arms = Object.values(ARMS).filter((a) => armsSeen.has(a.arm));
    const g = (m: string) => groups.map(({ key, group }) => ({ key: `${m}@${key}`, group }));
    const common = { better: "lower" as const, baseline: ARMS.basebackup.arm, groupLabel: "dataset", arms };
    out.tables.push(
      s.table({ title: "Time from start to the first successful query", unit: "ms", groups: g("ms"), ...common }),
      s.table({ title: "Bytes the master sends per new replica", unit: "bytes", groups: g("master"), ...common }),
      s.table({ title: "Local disk the new replica writes (du)", unit: "bytes", groups: g("disk"), ...common }),
    );
    out.notes.push(
      "Everything runs on one machine over loopback: transfers cost no network time here, which flatters `pg_basebackup` (its bytes would cross the network from the master) and the baked arms alike (whose image pull is not part of the measurement).",
      ctx.dropCaches
        ? "The page cache was dropped before each sample (--drop-caches): every arm reads its source from disk, as a new node would."
        : "Page cache is warm (the master, the dump and the snapshot were just written); a new node pulling an image starts colder (see --drop-caches).",
    );
    return out;
  },
};

function reading(out: Findings): string[] {
  const lines: string[] = [];
  const t = out.tables[0];
  if (!t) return lines;
  const rows = tableSummaries(t);
  const slower: string[] = [];
  for (const group of new Set(rows.map((r) => r.arm.group))) {
    const base = rows.find((r) => r.arm.group === group && r.arm.arm === t.baseline);
    const parts = rows
      .filter((r) => r.arm.group === group && r.arm.arm !== t.baseline && Number.isFinite(r.r))
      .map((r) => {
        const real = base !== undefined && separated(r.s, base.s);
        const noise = real ? "" : " (ranges overlap: within noise)";
        if (real && r.r > 1 && r.arm.arm.startsWith("baked")) slower.push(`${r.arm.arm} at ${group}`);
        return `${r.arm.arm} ${r.r < 1 ? `${(1 / r.r).toFixed(1)}× faster` : `${r.r.toFixed(1)}× slower`}${noise}`;
      });
    if (parts.length) lines.push(`At ${group}, against the streaming standby: ${parts.join(", ")}.`);
  }
  const baked = rows.some((r) => r.arm.arm.startsWith("baked"));
  if (baked) {
    lines.push("A baked replica costs the master nothing (its data comes from the image), where each new standby makes the master read and send the whole cluster.");
    if (slower.length) {
      lines.push(
        `Worse: ${slower.join(", ")} starts slower than the standby. On this file system the working copy is real work: the overlay's default warm-up opens every relation file read-write, which copies each one into the upper dir (B3), and the copy mode copies the whole PGDATA; both move as many bytes as a base backup does, only locally.` +
          " On XFS with reflink both become clones (B3), which is why the design asks for it on fleet nodes.",
      );
    } else {
      lines.push("Its start-up is local work only (a working copy and warm-up, see B3), never slower than receiving a base backup here beyond the rounds' spread, even over loopback.");
    }
  }
  if (rows.some((r) => r.arm.arm === ARMS.restore.arm)) {
    lines.push("`pg_restore` at start is the slowest everywhere: it reloads every row and rebuilds every index on each new replica.");
  }
  return lines;
}
