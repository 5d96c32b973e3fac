import { freePort } from "../runtime/pg/ports";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { waitFirstQuery } from "./lib/dataset";
import { loadReplica, type OurReplica } from "./lib/ours";
import { pgbench, writeScript } from "./lib/pgbench";
import { makeDir, removeDir } from "./lib/proc";
import { basebackupStandby, type BaselineServer } from "./lib/replicas";
import { tableSummaries } from "./lib/report";
import { separated } from "./lib/stats";
import { bakeSnapshot } from "./lib/snapshots";

const CLIENTS = 8;
const THREADS = 2;
const WARMUP_S = 2;

const ARMS = {
  master: { arm: "master", note: "the master itself (the baseline: what a single database serves)" },
  standby: { arm: "streaming standby", note: "a hot standby made with `pg_basebackup`, streaming from the master" },
  copy: { arm: "baked, plain dir", note: "ours: `startReplica` with a full-copy working copy (a plain directory)" },
  overlay: { arm: "baked, overlay", note: "ours: `startReplica` on a kernel overlay working copy (default warm-up `files`)" },
} as const;

/** B2: pgbench -S and a select-heavy script, same settings, against the master, a standby and our replicas. */
export const b2: Bench = {
  id: "B2",
  name: "read-throughput",
  title: "read throughput: pgbench against the master, a streaming standby and baked replicas",
  reading,
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const out: BenchOutput = { datasets: [], tables: [], skipped: [], notes: [] };
    const { master, info } = await ctx.dataset(ctx.profile.datasetMB);
    out.datasets.push(info);
    const seconds = ctx.profile.pgbenchSeconds;
    const scriptDir = makeDir(ctx.workRoot, "cndb-bench-pgbench-");
    const urls = new Map<string, string>([[ARMS.master.arm, master.url]]);
    let standby: BaselineServer | undefined;
    const replicas: { rep?: OurReplica; workDir: string }[] = [];
    try {
      const script = writeScript(scriptDir);
      standby = await basebackupStandby(master, ctx.workRoot);
      urls.set(ARMS.standby.arm, standby.url);
      const mod = loadReplica();
      const snap = await bakeSnapshot(ctx, master, info);
      if (!mod.ok || !snap.ok) out.skipped.push({ arm: "baked (both)", reason: !snap.ok ? snap.reason : !mod.ok ? mod.reason : "" });
      else {
        for (const a of [ARMS.copy, ARMS.overlay]) {
          const r: { rep?: OurReplica; workDir: string } = { workDir: makeDir(ctx.workRoot, "cndb-bench-replica-") };
          replicas.push(r);
          try {
            r.rep = await mod.value.startReplica({ snapshot: snap.value.dir, port: await freePort(), workDir: r.workDir, workingCopy: a === ARMS.copy ? "copy" : "overlay" });
            urls.set(a.arm, r.rep.url());
          } catch (e) {
            out.skipped.push({ arm: a.arm, reason: `startReplica failed: ${(e as Error).message.split("\n")[0]}` });
          }
        }
      }
      const arms = [...urls.keys()];
      for (const url of urls.values()) await waitFirstQuery(url, info.pgbenchScale);
      const common = ["-c", String(CLIENTS), "-j", String(THREADS), "-M", "prepared"];
      const scripts = [
        { key: "S", label: "pgbench -S (builtin select-only)", args: [...common, "-S"] },
        { key: "f", label: "select-heavy script (-f, 4 queries/txn)", args: [...common, "-D", `scale=${info.pgbenchScale}`, "-f", script] },
      ];
      for (const url of urls.values()) await pgbench(url, scripts[0].args, WARMUP_S);
      const s = new Samples();
      const latency = new Samples();
      // One round = every arm under each script; arms rotate, scripts alternate.
      await interleave(ctx, arms, ctx.rounds, async (arm, round) => {
        for (const sc of round % 2 ? [...scripts].reverse() : scripts) {
          const r = await pgbench(urls.get(arm)!, sc.args, seconds);
          s.add(sc.key, arm, r.tps);
          latency.add(sc.key, arm, r.latencyMs);
        }
      }, out.skipped);
      const specs = Object.values(ARMS).filter((a) => urls.has(a.arm));
      const groups = scripts.map((sc) => ({ key: sc.key, group: sc.label }));
      out.tables.push(
        s.table({ title: `Throughput, ${CLIENTS} clients, ${THREADS} threads, ${seconds} s per run, prepared statements`, unit: "tps", better: "higher", baseline: ARMS.master.arm, groupLabel: "workload", arms: specs, groups }),
        latency.table({ title: "Average latency per transaction (pgbench's)", unit: "ms", better: "lower", baseline: ARMS.master.arm, groupLabel: "workload", arms: specs, groups }),
      );
      out.notes.push(
        `Every server runs PostgreSQL's defaults for memory (shared_buffers 128MB, max_connections 100); the dataset (${info.label}) ${info.dbBytes < 128 * 2 ** 20 ? "fits in shared_buffers" : "is larger than shared_buffers but fits in the OS page cache"}, so this measures CPU per query, not I/O.`,
        `pgbench runs on the same 2 cores as the server it measures; ${WARMUP_S} s of pgbench -S warm each arm before the rounds.`,
      );
      return out;
    } finally {
      for (const r of replicas) {
        await r.rep?.stop().catch((e: Error) => ctx.log(`stopping a replica: ${e.message}`));
        removeDir(r.workDir);
      }
      await standby?.stop();
      removeDir(scriptDir);
    }
  },
};

function reading(out: Findings): string[] {
  const rows = tableSummaries(out.tables[0]);
  const lines: string[] = [];
  const worse: string[] = [];
  for (const group of new Set(rows.map((r) => r.arm.group))) {
    const base = rows.find((r) => r.arm.group === group && r.arm.arm === ARMS.master.arm);
    const parts = rows
      .filter((r) => r.arm.group === group && r.arm.arm !== ARMS.master.arm && Number.isFinite(r.r))
      .map((r) => {
        const real = base !== undefined && separated(r.s, base.s);
        if (real && r.r < 1) worse.push(`${r.arm.arm} on ${group}`);
        return `${r.arm.arm} ${(r.r * 100).toFixed(0)}%${real ? "" : " (within noise)"}`;
      });
    if (parts.length) lines.push(`${group}, throughput as a share of the master's: ${parts.join(", ")}.`);
  }
  if (worse.length) {
    lines.push(
      `Below the master beyond the rounds' spread: ${worse.join("; ")}. All replicas here are hot standbys (in recovery), the baked ones included; on 2 cores shared with pgbench the gap is as likely the machine as PostgreSQL, so rerun quiet before reading more into it.`,
    );
  } else if (rows.length) {
    lines.push("No replica is slower than the master beyond the rounds' spread: once its files are in place, a baked replica is an ordinary PostgreSQL hot standby and a read costs the same.");
  }
  return lines;
}
