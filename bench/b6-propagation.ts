import http from "node:http";
import pg from "pg";
import type { LocalDeployment } from "../runtime/local/up";
import { freePort } from "../runtime/pg/ports";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { BENCH_DB } from "./lib/dataset";
import { httpGetJson } from "./lib/load";
import { onCleanup } from "./lib/cleanup";
import { loadLocal } from "./lib/ours";
import { makeDir, removeDir, sleep } from "./lib/proc";
import { basebackupStandby, type BaselineServer } from "./lib/replicas";
import { tableSummaries } from "./lib/report";

const LOCAL = "local refresh (bake + switch)";
const STANDBY = "streaming standby";
const POLL_MS = 5;
const VISIBLE_TIMEOUT_MS = 120_000;

/** B6: from a commit on the master to it being visible: local mode's refresh against streaming replication. */
export const b6: Bench = {
  id: "B6",
  name: "propagation",
  title: "propagation: commit on the master to visible through the API (local refresh) vs a streaming standby",
  reading,
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const out: BenchOutput = { datasets: [], tables: [], skipped: [], notes: [] };
    const local = loadLocal();
    if (!local.ok) out.skipped.push({ arm: LOCAL, reason: local.reason });
    const s = new Samples();
    const groups: { key: string; group: string }[] = [];
    let marker = 0;
    for (const sizeMB of ctx.profile.scaleSizesMB) {
      const { master, info } = await ctx.dataset(sizeMB);
      out.datasets.push(info);
      groups.push({ key: String(sizeMB), group: info.label });
      await master.server.query("CREATE TABLE IF NOT EXISTS propagation (id int PRIMARY KEY, at timestamptz NOT NULL)", [], BENCH_DB);
      const stateDir = makeDir(ctx.workRoot, "cndb-bench-local-");
      let standby: BaselineServer | undefined;
      let dep: LocalDeployment | undefined;
      let stopLocal: (() => Promise<void>) | undefined;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const logLines: string[] = [];
      // The bench master runs synchronous_commit=off (fast loading); a commit must be flushed at once, or
      // the walsender holds it back for up to wal_writer_delay and the standby looks 200 ms slow.
      const writer = new pg.Client(master.server.socketConfig(BENCH_DB));
      try {
        await writer.connect();
        await writer.query("SET synchronous_commit = on");
        standby = await basebackupStandby(master, ctx.workRoot);
        const arms = [STANDBY];
        if (local.ok) {
          try {
            dep = await local.value.LocalDeployment.start({
              stateDir,
              master: master.url,
              port: await freePort(),
              log: (l) => logLines.push(l),
            });
            const started = dep;
            stopLocal = onCleanup(`local mode ${stateDir}`, () => started.stop());
            arms.push(LOCAL);
          } catch (e) {
            const tail = logLines.slice(-3).join(" | ");
            out.skipped.push({ arm: `${LOCAL} at ${info.label}`, reason: `LocalDeployment.start failed: ${(e as Error).message.split("\n")[0]}${tail ? ` (log: ${tail})` : ""}` });
          }
        }
        const sb = standby;
        const d = dep;
        const commit = async (): Promise<number> => {
          const id = ++marker;
          await writer.query("INSERT INTO propagation VALUES ($1, clock_timestamp())", [id]);
          return id;
        };
        await interleave(ctx, arms, ctx.rounds, async (arm) => {
          if (arm === STANDBY) {
            const c = new pg.Client({ connectionString: sb.url });
            await c.connect();
            try {
              const id = await commit();
              const t0 = performance.now();
              await until(async () => (await c.query("SELECT 1 FROM propagation WHERE id = $1", [id])).rowCount === 1);
              s.add(`visible@${sizeMB}`, arm, performance.now() - t0);
            } finally {
              await c.end();
            }
            return;
          }
          const base = new URL(d!.apiUrl);
          const id = await commit();
          const t0 = performance.now();
          const r = await d!.refresh();
          await until(async () => {
            try {
              await httpGetJson(agent, base, `/v1/tables/propagation/rows/${id}`);
              return true;
            } catch {
              return false;
            }
          });
          s.add(`visible@${sizeMB}`, arm, performance.now() - t0);
          s.add(`refresh@${sizeMB}`, arm, r.elapsedMs);
        }, out.skipped);
      } finally {
        await writer.end().catch(() => undefined);
        agent.destroy();
        await stopLocal?.().catch((e: Error) => ctx.log(`stopping local mode: ${e.message}`));
        await standby?.stop();
        removeDir(stateDir);
        await master.server.query("DROP TABLE IF EXISTS propagation", [], BENCH_DB).catch(() => undefined);
      }
    }
    const arms = [
      { arm: STANDBY, note: "a hot standby streaming from the master: poll a query on it until the row is there" },
      { arm: LOCAL, note: "`LocalDeployment` over the same master (2 replicas, default warm-up): `refresh()` bakes, starts new replicas, switches the API; then poll the API until the row is there" },
    ];
    const g = (m: string) => groups.map(({ key, group }) => ({ key: `${m}@${key}`, group }));
    out.tables.push(
      s.table({ title: "From commit on the master to visible to a reader", unit: "ms", better: "lower", baseline: STANDBY, groupLabel: "dataset", arms, groups: g("visible") }),
      s.table({ title: "Local refresh as reported by refresh() (bake + new replicas + switch)", unit: "ms", better: "lower", baseline: LOCAL, groupLabel: "dataset", arms: arms.slice(1), groups: g("refresh") }),
    );
    out.notes.push(
      "Local mode refreshes on demand (or on a schedule with --refresh-every); the commit becomes visible only after a whole bake, so the staleness a reader sees is the refresh interval plus this time.",
      `Visibility is polled every ${POLL_MS} ms.`,
    );
    return out;
  },
};

async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + VISIBLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(POLL_MS);
  }
  throw new Error(`not visible within ${VISIBLE_TIMEOUT_MS} ms`);
}

function reading(out: Findings): string[] {
  const lines: string[] = [];
  for (const r of tableSummaries(out.tables[0]).filter((x) => x.arm.arm === LOCAL && Number.isFinite(x.r))) {
    lines.push(`At ${r.arm.group}, a commit takes ${(r.s.median / 1000).toFixed(1)} s to reach readers through a local refresh, ${r.r.toFixed(0)}× the streaming standby's lag.`);
  }
  if (lines.length) {
    lines.push(
      "This is the design's trade-off, and here it is plainly worse: a streaming standby replays each commit within milliseconds, a baked fleet sees it only after the next bake, which grows with the data (dump, restore, freeze, verify).",
      "Use it where reads tolerate staleness of minutes, not where they need read-your-writes.",
    );
  }
  return lines;
}
