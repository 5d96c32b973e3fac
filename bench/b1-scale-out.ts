import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { IMAGE_SNAPSHOT_DIR } from "../common/contract";
import { freePort } from "../runtime/pg/ports";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { waitFirstQuery } from "./lib/dataset";
import { bakeSnapshot, type OurSnapshot } from "./lib/snapshots";
import { loadImage, loadReplica, type OurReplica } from "./lib/ours";
import { onCleanup } from "./lib/cleanup";
import { registryMissing, startRegistry, type Registry } from "./lib/registry";
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
  pull: {
    arm: "baked, pull + overlay",
    note: "ours, the whole path of a fresh node: `pullImage` of the snapshot image (gzip data layer) from a local `docker-registry`, `unpackLayer`, then `startReplica` on an overlay over it (as containerd would), default warm-up",
  },
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
      let image: { ref: string; remove(): void } | undefined;
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
          const pushed = await pushSnapshot(ctx, snap, out.skipped);
          if (pushed) {
            image = pushed;
            arms.push(ARMS.pull.arm);
          }
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
              s.add(key("download"), arm, sb.masterBytes);
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
              s.add(key("download"), arm, dump!.bytes);
              s.add(key("disk"), arm, await diskBytes(rs.dir));
            } finally {
              await rs.stop();
            }
          } else if (arm === ARMS.pull.arm) {
            if (!replicaMod.ok || !image) throw new Error("unreachable");
            const imageMod = loadImage();
            if (!imageMod.ok) throw new Error(imageMod.reason);
            const dir = makeDir(ctx.workRoot, "cndb-bench-node-");
            let rep: OurReplica | undefined;
            try {
              const layout = path.join(dir, "layout");
              const pulled = await imageMod.value.pullImage(image.ref, layout);
              const rootfs = path.join(dir, "rootfs");
              mkdirSync(rootfs, { mode: 0o755 });
              for (const l of pulled.manifest.layers) await imageMod.value.unpackLayer(imageMod.value.blobPath(layout, l.digest), rootfs);
              const workDir = path.join(dir, "containers");
              mkdirSync(workDir, { mode: 0o755 });
              rep = await replicaMod.value.startReplica({ snapshot: path.join(rootfs, IMAGE_SNAPSHOT_DIR), port: await freePort(), workDir, workingCopy: "overlay" });
              await waitFirstQuery(rep.url(), info.pgbenchScale);
              s.add(key("ms"), arm, performance.now() - t0);
              s.add(key("master"), arm, 0);
              s.add(key("download"), arm, pulled.manifest.config.size + pulled.manifest.layers.reduce((n, l) => n + l.size, 0));
              // the pulled blobs, the unpacked layer and the overlay's upper dir: what the node stores
              s.add(key("disk"), arm, await diskBytes(dir));
            } finally {
              await rep?.stop();
              removeDir(dir);
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
              s.add(key("download"), arm, 0);
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
        if (snap) out.notes.push(`${info.label}: the baked snapshot was made once beforehand (${(snap.elapsedMs / 1000).toFixed(1)} s, see B4)${image ? " and pushed to the local registry once" : ""}; \`baked, overlay\` and \`baked, copy\` start from it as a node that already holds the image would.`);
      } finally {
        image?.remove();
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
      s.table({
        title: "Bytes a new replica fetches from elsewhere (the master's base backup, the dump from its store, the image from the registry; 0 for a snapshot already on the node)",
        unit: "bytes", groups: g("download"), ...common,
      }),
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

/** Writes the snapshot's image layout and pushes it to a local registry (started once per run). */
async function pushSnapshot(ctx: BenchContext, snap: OurSnapshot, skipped: BenchOutput["skipped"]): Promise<{ ref: string; remove(): void } | undefined> {
  const note = (reason: string) => {
    if (!skipped.some((x) => x.arm === ARMS.pull.arm)) skipped.push({ arm: ARMS.pull.arm, reason });
    return undefined;
  };
  const imageMod = loadImage();
  if (!imageMod.ok) return note(imageMod.reason);
  const missing = registryMissing();
  if (missing) return note(missing);
  let registry: Registry;
  try {
    registry = await ctx.once("registry", async () => {
      const r = await startRegistry(ctx.workRoot);
      return { value: r, close: () => r.stop() };
    });
  } catch (e) {
    return note(`the local registry did not start: ${(e as Error).message.split("\n")[0]}`);
  }
  const dir = makeDir(ctx.workRoot, "cndb-bench-layout-");
  const remove = onCleanup(`image layout ${dir}`, () => removeDir(dir));
  try {
    const layoutDir = path.join(dir, "layout");
    await imageMod.value.writeImageLayout({ snapshotDir: snap.dir, manifest: snap.result.manifest, out: layoutDir });
    const pushed = await imageMod.value.pushImage({ layoutDir, ref: `${registry.host}/bench/snapshot:${snap.result.manifest.id}` });
    return { ref: pushed.pinnedRef, remove: () => void remove() };
  } catch (e) {
    await remove();
    return note(`writing or pushing the image failed: ${(e as Error).message.split("\n")[0]}`);
  }
}

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
        if (real && r.r > 1 && (r.arm.arm === ARMS.overlay.arm || r.arm.arm === ARMS.copy.arm)) slower.push(`${r.arm.arm} at ${group}`);
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
  // The pull arm against the standby: the bytes each fetches decide once a real network is in between.
  const dl = out.tables.find((x) => x.title.startsWith("Bytes a new replica fetches"));
  if (dl) {
    const dls = tableSummaries(dl);
    for (const group of new Set(rows.map((r) => r.arm.group))) {
      const get = (arr: typeof rows, arm: string) => arr.find((r) => r.arm.group === group && r.arm.arm === arm);
      const pull = get(rows, ARMS.pull.arm);
      const bb = get(rows, ARMS.basebackup.arm);
      const pullBytes = get(dls, ARMS.pull.arm);
      const bbBytes = get(dls, ARMS.basebackup.arm);
      if (!pull || !bb || !pullBytes || !bbBytes || !(pull.s.n && bb.s.n)) continue;
      const dt = (pull.s.median - bb.s.median) / 1000;
      const db = bbBytes.s.median - pullBytes.s.median;
      if (dt > 0 && db > 0) {
        lines.push(
          `At ${group}, the full fresh-node path (\`${ARMS.pull.arm}\`) is worse here: ${(pull.s.median / 1000).toFixed(1)} s against the standby's ${(bb.s.median / 1000).toFixed(1)} s, because loopback makes bytes free while it pays gunzip, untar and copy-up on 2 cores.` +
            ` It fetches ${fmtBytes(pullBytes.s.median)} instead of ${fmtBytes(bbBytes.s.median)}, so with a network between them it wins below about ${fmtBytes(db / dt)}/s (${((db / dt) * 8 / 1e9).toFixed(1)} Gbit/s) of node bandwidth, and the master sends nothing at all.`,
        );
      } else if (dt <= 0) {
        lines.push(`At ${group}, even the full fresh-node path (\`${ARMS.pull.arm}\`: pull, unpack, start) beats the standby, fetching ${fmtBytes(pullBytes.s.median)} from the registry instead of ${fmtBytes(bbBytes.s.median)} from the master.`);
      }
    }
  }
  if (rows.some((r) => r.arm.arm === ARMS.restore.arm)) {
    lines.push("`pg_restore` at start is the slowest everywhere: it reloads every row and rebuilds every index on each new replica.");
  }
  return lines;
}
