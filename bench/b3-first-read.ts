import { openSync, closeSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { freePort } from "../runtime/pg/ports";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { firstQuery } from "./lib/dataset";
import { mountOverlay, mountXfsLoop, usedBytes, xfsUnavailable, type Mounted } from "./lib/fs";
import { loadReplica, type OurReplica } from "./lib/ours";
import { diskBytes, makeDir, removeDir, run, runPg } from "./lib/proc";
import { tableSummaries, fmtBytes } from "./lib/report";
import { bakeSnapshot } from "./lib/snapshots";

const WARMUPS = ["none", "files", "full"] as const;

interface Fs {
  name: string;
  root: string;
  /**
   * Whether copied bytes can share extents with the lower files (then only a df delta tells what was
   * allocated, which is exact only on a file system no one else writes to, like our loop XFS).
   */
  mayShare: boolean;
  /** A stopped copy of the master's PGDATA on this file system (lower dir of the raw copy-up arms). */
  rawLower?: string;
  /** Our baked snapshot dir, copied onto this file system (an overlay clones only within one). */
  snapshot?: string;
}

/** B3: what overlayfs copy-up costs on first touch, raw and through our replica's warm-up modes. */
export const b3: Bench = {
  id: "B3",
  name: "first-read",
  title: "first-read cost on overlay: copy-up on the default file system and on XFS with reflink",
  reading,
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const out: BenchOutput = { datasets: [], tables: [], skipped: [], notes: [] };
    if (process.getuid?.() !== 0) {
      out.skipped.push({ arm: "all", reason: "needs root to mount overlay and loop file systems" });
      return out;
    }
    const { master, info } = await ctx.dataset(ctx.profile.datasetMB);
    out.datasets.push(info);
    const fss: Fs[] = [{ name: "default", root: ctx.workRoot, mayShare: true }];
    const madeDirs: string[] = [];
    let xfs: Mounted | undefined;
    try {
      const defaultFs = (await run("findmnt", ["-n", "-o", "FSTYPE", "-T", ctx.workRoot])).stdout.trim();
      fss[0].name = `${defaultFs} (default)`;
      // ext2/3/4 and tmpfs cannot share extents: du of the upper dir is exactly what was allocated.
      fss[0].mayShare = !/^(ext[234]|tmpfs)$/.test(defaultFs);
      const noXfs = await xfsUnavailable();
      if (noXfs) out.skipped.push({ arm: "xfs reflink", reason: noXfs });
      else {
        try {
          xfs = await mountXfsLoop(ctx.workRoot, Math.max(1 << 30, info.dbBytes * 6));
          fss.push({ name: "xfs reflink=1 (loop)", root: xfs.dir, mayShare: true });
        } catch (e) {
          out.skipped.push({ arm: "xfs reflink", reason: `cannot make a loop XFS here: ${(e as Error).message.split("\n")[0]}` });
        }
      }
      // Raw lower dirs: a stopped PGDATA copy (pg_basebackup) on each file system.
      for (const fs of fss) {
        const d = makeDir(fs.root, "cndb-bench-lower-");
        madeDirs.push(d);
        await runPg("pg_basebackup", ["-h", "127.0.0.1", "-p", String(master.server.port), "-U", "postgres", "-D", path.join(d, "pgdata"), "-X", "fetch", "-c", "fast", "--no-sync"]);
        fs.rawLower = path.join(d, "pgdata");
      }
      const mod = loadReplica();
      const snap = await bakeSnapshot(ctx, master, info);
      if (!mod.ok || !snap.ok) out.skipped.push({ arm: "our warm-up modes", reason: !snap.ok ? snap.reason : !mod.ok ? mod.reason : "" });
      else {
        for (const fs of fss) {
          if (fs.root === ctx.workRoot) fs.snapshot = snap.value.dir;
          else {
            const d = makeDir(fs.root, "cndb-bench-snapcopy-");
            madeDirs.push(d);
            await run("cp", ["-a", snap.value.dir, path.join(d, "snap")]);
            fs.snapshot = path.join(d, "snap");
          }
        }
      }
      const big = largestRelation(fss[0].rawLower!);
      const raw = new Samples();
      const ours = new Samples();
      const arms = [
        ...fss.flatMap((fs) => [`${fs.name}|largest`, `${fs.name}|all`]),
        ...(mod.ok && snap.ok ? fss.flatMap((fs) => WARMUPS.map((w) => `${fs.name}|${w}`)) : []),
      ];
      await interleave(ctx, arms, ctx.rounds, async (arm) => {
        await ctx.coldStart();
        const [fsName, kind] = arm.split("|");
        const fs = fss.find((f) => f.name === fsName)!;
        if (kind === "largest" || kind === "all") {
          const ovl = await mountOverlay(fs.rawLower!, fs.root);
          try {
            const files = kind === "largest" ? [path.join(ovl.dir, big.rel)] : relationFiles(ovl.dir);
            const t0 = performance.now();
            for (const f of files) closeSync(openSync(f, "r+"));
            raw.add(`${kind}:ms`, fsName, performance.now() - t0);
            const du = await diskBytes(ovl.upper);
            raw.add(`${kind}:du`, fsName, du);
            raw.add(`${kind}:df`, fsName, fs.mayShare ? Math.max(0, usedBytes(ovl.upper) - ovl.usedBefore) : du);
          } finally {
            await ovl.unmount();
          }
        } else {
          const workDir = makeDir(fs.root, "cndb-bench-replica-");
          const before = usedBytes(workDir);
          let rep: OurReplica | undefined;
          try {
            if (!mod.ok) throw new Error("unreachable");
            rep = await mod.value.startReplica({
              snapshot: fs.snapshot!, port: await freePort(), workDir, workingCopy: "overlay", warmup: kind as (typeof WARMUPS)[number],
            });
            const t0 = performance.now();
            await firstQuery(rep.url(), info.pgbenchScale);
            const first = performance.now() - t0;
            const t1 = performance.now();
            await firstQuery(rep.url(), info.pgbenchScale);
            const second = performance.now() - t1;
            const key = fsName;
            ours.add("startup", `${kind}@${key}`, rep.startupMs);
            ours.add("first", `${kind}@${key}`, first);
            ours.add("second", `${kind}@${key}`, second);
            ours.add("total", `${kind}@${key}`, rep.startupMs + first);
            const du = await diskBytes(workDir);
            ours.add("du", `${kind}@${key}`, du);
            ours.add("df", `${kind}@${key}`, fs.mayShare ? Math.max(0, usedBytes(workDir) - before) : du);
          } finally {
            await rep?.stop();
            removeDir(workDir);
          }
        }
      }, out.skipped);

      // Raw copy-up tables: arms are file systems, groups what was touched.
      const fsArms = fss.map((f) => ({ arm: f.name }));
      const touchGroups = (m: string) => [
        { key: `largest:${m}`, group: `largest relation file (${fmtBytes(big.bytes)})` },
        { key: `all:${m}`, group: `every relation file (${fmtBytes(relationBytes(fss[0].rawLower!))})` },
      ];
      const rawCommon = { better: "lower" as const, baseline: fss[0].name, groupLabel: "files opened read-write", arms: fsArms };
      out.tables.push(
        raw.table({ title: "Raw copy-up: time to open files read-write through a fresh overlay (no PostgreSQL)", unit: "ms", groups: touchGroups("ms"), ...rawCommon }),
        raw.table({ title: "Raw copy-up: bytes in the upper dir (du)", unit: "bytes", groups: touchGroups("du"), ...rawCommon }),
        raw.table({ title: "Raw copy-up: space really allocated (reflinked extents shared; see notes)", unit: "bytes", groups: touchGroups("df"), ...rawCommon }),
      );
      if (mod.ok && snap.ok) {
        // Our replica: arms are warm-up modes within each file system, baseline "none".
        const modeArms = WARMUPS.map((w) => ({ arm: w, note: WARMUP_NOTES[w] }));
        const fsGroups = (m: string) => fss.map((f) => ({ key: m, group: f.name }));
        const tbl = (m: string, title: string, unit: "ms" | "bytes") => {
          const t = ours.table({ title, unit, better: "lower", baseline: "none", groupLabel: "file system", arms: modeArms, groups: fsGroups(m) });
          // Samples were keyed "<mode>@<fs>": pick each group's own.
          t.arms = fss.flatMap((f) => WARMUPS.map((w) => ({ arm: w, note: WARMUP_NOTES[w], group: f.name, samples: ours.get(m, `${w}@${f.name}`) })));
          return t;
        };
        out.tables.push(
          tbl("total", "Our replica: ready + first query (startReplica's startup_ms + a first point lookup on a new connection)", "ms"),
          tbl("startup", "Our replica: startup_ms (working copy, warm-up, PostgreSQL up)", "ms"),
          tbl("first", "Our replica: first query after ready (connect + point lookup)", "ms"),
          tbl("second", "Our replica: second query (connect + point lookup)", "ms"),
          tbl("du", "Our replica: bytes in the writable layer (du of the work dir)", "bytes"),
          tbl("df", "Our replica: space really allocated (reflinked extents shared; see notes)", "bytes"),
        );
      }
      out.notes.push(
        `"Space really allocated" is a df delta where extents can be shared (exact on the loop XFS, which only this benchmark writes to${fss[0].mayShare ? "; on the default file system other processes' writes add noise" : ""})${fss[0].mayShare ? "" : `, and du of the upper dir on ${fss[0].name}, which cannot share extents`}.`,
        "The lower dirs sit on the same file system as the upper dir, as in a container runtime whose image store and container layers share one file system; on XFS the loop device adds its own overhead.",
        ctx.dropCaches
          ? "The page cache was dropped before each sample (--drop-caches): copy-up reads the lower files from disk."
          : "The page cache is warm for the lower files after the first round (as on a node that just pulled the image; see --drop-caches).",
      );
      return out;
    } finally {
      for (const d of madeDirs.reverse()) removeDir(d);
      await xfs?.unmount();
    }
  },
};

const WARMUP_NOTES: Record<(typeof WARMUPS)[number], string> = {
  none: "no warm-up: the first queries pay copy-up of every file they open (what a plain container does)",
  files: "open every relation file read-write before ready (copy-up up front; the default)",
  full: "`files` plus reading every file through (page cache warm)",
};

function relationFiles(pgdata: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  for (const d of ["base", "global"]) walk(path.join(pgdata, d));
  return out;
}

function relationBytes(pgdata: string): number {
  return relationFiles(pgdata).reduce((a, f) => a + statSync(f).size, 0);
}

function largestRelation(pgdata: string): { rel: string; bytes: number } {
  let best = { rel: "", bytes: -1 };
  for (const f of relationFiles(pgdata)) {
    const b = statSync(f).size;
    if (b > best.bytes) best = { rel: path.relative(pgdata, f), bytes: b };
  }
  return best;
}

function reading(out: Findings): string[] {
  const fsNames = [...new Set(out.tables.find((t) => t.title.startsWith("Raw copy-up: time"))?.arms.map((a) => a.arm) ?? [])];
  const lines: string[] = [];
  const find = (prefix: string) => out.tables.find((t) => t.title.startsWith(prefix));
  const rawMs = find("Raw copy-up: time");
  const rawDf = find("Raw copy-up: space really");
  if (rawMs && fsNames.length > 1) {
    const df = rawDf ? tableSummaries(rawDf) : [];
    for (const r of tableSummaries(rawMs).filter((x) => x.arm.arm !== rawMs.baseline && Number.isFinite(x.r))) {
      const alloc = df.find((d) => d.arm.arm === r.arm.arm && d.arm.group === r.arm.group);
      const baseAlloc = df.find((d) => d.arm.arm === rawMs.baseline && d.arm.group === r.arm.group);
      lines.push(
        `Copy-up of ${(r.arm.group ?? "").replace(/^largest/, "the largest")} takes ${pct(r.r)} of the ${rawMs.baseline} time on ${r.arm.arm}` +
          (alloc && baseAlloc ? `, and allocates ${fmtBytes(alloc.s.median)} instead of ${fmtBytes(baseAlloc.s.median)}` : "") +
          ".",
      );
    }
  }
  const total = find("Our replica: ready + first");
  const first = find("Our replica: first query");
  if (total && first) {
    const firsts = tableSummaries(first);
    for (const r of tableSummaries(total).filter((x) => x.arm.arm === "files" && Number.isFinite(x.r))) {
      const f = firsts.find((x) => x.arm.arm === "files" && x.arm.group === r.arm.group);
      const fNone = firsts.find((x) => x.arm.arm === "none" && x.arm.group === r.arm.group);
      lines.push(
        `On ${r.arm.group}, the default warm-up (\`files\`) makes ready + first query ${r.r > 1 ? `${r.r.toFixed(1)}× as long as` : `${(1 / r.r).toFixed(1)}× shorter than`} no warm-up` +
          (f && fNone ? `, and the first client query ${fmtMs(f.s.median)} instead of ${fmtMs(fNone.s.median)}` : "") +
          "." +
          (r.r > 1.2 ? " That total is worse: warm-up copies up every relation file, where an unwarmed replica copies only what its first queries touch; it is paid before the replica reports ready, so no client waits on it, but a scale-out does." : ""),
      );
    }
  }
  if (!xfsMeasured(out)) lines.push("No XFS measurement in this run (see Not measured).");
  return lines;
}

function xfsMeasured(out: Findings): boolean {
  return out.tables.some((t) => t.arms.some((a) => (a.group ?? "").startsWith("xfs") || a.arm.startsWith("xfs")));
}

function pct(r: number): string {
  return r < 0.01 ? `${(r * 100).toFixed(2)}%` : `${(r * 100).toFixed(0)}%`;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
