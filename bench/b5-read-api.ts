import http from "node:http";
import pg from "pg";
import { freePort } from "../runtime/pg/ports";
import { startApiProcess, type ApiProcess } from "./lib/api";
import { type Bench, type BenchContext, type BenchOutput, type Findings, interleave, Samples } from "./lib/context";
import { closedLoop, httpGetJson, type LoadResult } from "./lib/load";
import { loadReplica, type OurReplica } from "./lib/ours";
import { makeDir, removeDir, run } from "./lib/proc";
import { tableSummaries } from "./lib/report";
import { separated } from "./lib/stats";
import { bakeSnapshot } from "./lib/snapshots";

/** Concurrent clients; the same as the API's default pool size per replica and the direct pool's size. */
const CONCURRENCY = 10;
const LIST_LIMIT = 20;
const DIRECT = "direct pg (pg.Pool)";
const API = "read API (cndb api)";
const FLOOR = "minimal Fastify + pg.Pool";

interface Workload {
  key: string;
  label: string;
  direct: (pool: pg.Pool, i: number) => Promise<void>;
  api: (agent: http.Agent, base: URL, i: number) => Promise<void>;
  floor: (agent: http.Agent, base: URL, i: number) => Promise<void>;
}

/** B5: the read API against direct PostgreSQL queries on the same replica (and PostgREST when installable). */
export const b5: Bench = {
  id: "B5",
  name: "read-api",
  title: "read API: point lookups and filtered lists, requests/s and p99, against direct pg",
  reading,
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const out: BenchOutput = { datasets: [], tables: [], skipped: [], notes: [] };
    const { master, info } = await ctx.dataset(ctx.profile.datasetMB);
    out.datasets.push(info);
    out.skipped.push({ arm: "PostgREST", reason: await postgrestMissing() });
    const mod = loadReplica();
    const snap = await bakeSnapshot(ctx, master, info);
    if (!mod.ok || !snap.ok) {
      out.skipped.push({ arm: "all", reason: !snap.ok ? snap.reason : !mod.ok ? mod.reason : "" });
      return out;
    }
    const rows = info.rows;
    const branches = info.pgbenchScale;
    // Deterministic pseudo-random keys, the same sequence for every arm.
    const aid = (i: number) => 1 + ((i * 2654435761) % rows);
    const bid = (i: number) => 1 + ((i * 40503) % branches);
    const workloads: Workload[] = [
      {
        key: "point",
        label: "point lookup by primary key",
        direct: async (pool, i) => {
          const r = await pool.query({ name: "point", text: "SELECT aid, bid, abalance, filler FROM pgbench_accounts WHERE aid = $1", values: [aid(i)] });
          if (r.rowCount !== 1) throw new Error("point lookup: no row");
        },
        api: async (agent, base, i) => {
          await httpGetJson(agent, base, `/v1/tables/pgbench_accounts/rows/${aid(i)}`);
        },
        floor: async (agent, base, i) => {
          await httpGetJson(agent, base, `/point/${aid(i)}`);
        },
      },
      {
        key: "list",
        label: `filtered list (bid = x, ${LIST_LIMIT} rows by aid)`,
        direct: async (pool, i) => {
          const r = await pool.query({ name: "list", text: `SELECT aid, bid, abalance, filler FROM pgbench_accounts WHERE bid = $1 ORDER BY aid LIMIT ${LIST_LIMIT}`, values: [bid(i)] });
          if (r.rowCount !== LIST_LIMIT) throw new Error("list: short page");
        },
        api: async (agent, base, i) => {
          const body = (await httpGetJson(agent, base, `/v1/tables/pgbench_accounts/rows?bid=eq.${bid(i)}&limit=${LIST_LIMIT}`)) as { rows?: unknown[] };
          if (body.rows?.length !== LIST_LIMIT) throw new Error("list: short page");
        },
        floor: async (agent, base, i) => {
          const body = (await httpGetJson(agent, base, `/list?bid=${bid(i)}&limit=${LIST_LIMIT}`)) as { rows?: unknown[] };
          if (body.rows?.length !== LIST_LIMIT) throw new Error("list: short page");
        },
      },
    ];

    const workDir = makeDir(ctx.workRoot, "cndb-bench-replica-");
    let rep: OurReplica | undefined;
    let api: ApiProcess | undefined;
    let floor: ApiProcess | undefined;
    let pool: pg.Pool | undefined;
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    try {
      rep = await mod.value.startReplica({ snapshot: snap.value.dir, port: await freePort(), workDir, workingCopy: "overlay" });
      pool = new pg.Pool({ connectionString: rep.url(), max: CONCURRENCY });
      api = await startApiProcess({ replicaUrls: [rep.url()], snapshotDir: snap.value.dir });
      floor = await startApiProcess({ replicaUrls: [rep.url()], snapshotDir: snap.value.dir, floor: { poolSize: CONCURRENCY } });
      const [p, apiUrl, floorUrl] = [pool, api.url, floor.url];
      const runOne = (arm: string, w: Workload, seconds: number): Promise<LoadResult> =>
        closedLoop(
          { concurrency: CONCURRENCY, seconds },
          arm === DIRECT ? (i) => w.direct(p, i) : arm === API ? (i) => w.api(agent, apiUrl, i) : (i) => w.floor(agent, floorUrl, i),
        );
      const armNames = [DIRECT, API, FLOOR];
      for (const arm of armNames) for (const w of workloads) await runOne(arm, w, 1); // warm-up
      const s = new Samples();
      await interleave(ctx, armNames, ctx.rounds, async (arm, round) => {
        for (const w of round % 2 ? [...workloads].reverse() : workloads) {
          const r = await runOne(arm, w, ctx.profile.loadSeconds);
          if (r.errors) throw new Error(`${r.errors} failed requests (${r.firstError})`);
          s.add(`${w.key}:rps`, arm, r.rps);
          s.add(`${w.key}:p99`, arm, r.p99Ms);
          s.add(`${w.key}:p50`, arm, r.p50Ms);
        }
      }, out.skipped);
      const arms = [
        { arm: DIRECT, note: `node-postgres Pool of ${CONCURRENCY} connections, prepared statements, the same columns (aid, bid, abalance, filler) as the API returns` },
        { arm: API, note: `\`cndb api\` in its own process over the same replica (pool of 10), HTTP/1.1 keep-alive, JSON bodies parsed by the client` },
        { arm: FLOOR, note: "the smallest Fastify server answering the same two requests with the same SQL over a pg.Pool of 10 (bench/lib/floor-api.ts): no catalog, query building, auth, ETags, metrics, request log or failover. What any Node HTTP layer costs here" },
      ];
      const groups = (m: string) => workloads.map((w) => ({ key: `${w.key}:${m}`, group: w.label }));
      const common = { baseline: DIRECT, groupLabel: "workload", arms };
      out.tables.push(
        s.table({ title: `Requests per second, ${CONCURRENCY} concurrent closed-loop clients, ${ctx.profile.loadSeconds} s per run`, unit: "req/s", better: "higher", groups: groups("rps"), ...common }),
        s.table({ title: "p99 latency", unit: "ms", better: "lower", groups: groups("p99"), ...common }),
        s.table({ title: "p50 latency", unit: "ms", better: "lower", groups: groups("p50"), ...common }),
      );
      out.notes.push(
        "All arms query one baked replica (overlay working copy) on 127.0.0.1; the load generator runs in the benchmark's own Node process and shares the 2 cores with the API and PostgreSQL.",
        "The API's per-request log line is written to /dev/null (logging on, as deployed).",
      );
      return out;
    } finally {
      agent.destroy();
      await pool?.end().catch(() => undefined);
      await api?.stop();
      await floor?.stop();
      await rep?.stop().catch((e: Error) => ctx.log(`stopping the replica: ${e.message}`));
      removeDir(workDir);
    }
  },
};

async function postgrestMissing(): Promise<string> {
  try {
    await run("which", ["postgrest"]);
    return "a postgrest binary is installed, but this benchmark has no PostgREST arm yet";
  } catch {
    // not installed: say whether Debian has it at all
  }
  try {
    const { stdout } = await run("apt-cache", ["policy", "postgrest"]);
    const cand = /Candidate:\s*(\S+)/.exec(stdout)?.[1];
    if (cand && cand !== "(none)") return `not installed (Debian has postgrest ${cand}: \`apt-get install postgrest\`), and this benchmark has no PostgREST arm yet`;
  } catch {
    // no apt
  }
  return "Debian 12 (bookworm) has no `postgrest` package (`apt-cache policy postgrest` finds none), and no other registry is reachable here";
}

function reading(out: Findings): string[] {
  const lines: string[] = [];
  if (!out.tables.length) return lines;
  const rps = tableSummaries(out.tables[0]);
  const p99 = tableSummaries(out.tables[1]);
  for (const r of rps.filter((x) => x.arm.arm === API && Number.isFinite(x.r))) {
    const lat = p99.find((x) => x.arm.arm === API && x.arm.group === r.arm.group);
    const fl = rps.find((x) => x.arm.arm === FLOOR && x.arm.group === r.arm.group);
    lines.push(
      `${r.arm.group}: the API serves ${(r.r * 100).toFixed(0)}% of the direct requests/s` +
        (lat && Number.isFinite(lat.r) ? ` at ${lat.r.toFixed(1)}× the p99` : "") +
        (fl && Number.isFinite(fl.r)
          ? `; the minimal Fastify server ${(fl.r * 100).toFixed(0)}%, so the API does ${((r.s.median / fl.s.median) * 100).toFixed(0)}% of what a bare Node HTTP layer does${separated(fl.s, r.s) ? "" : " (within noise of it)"}`
          : "") +
        ".",
    );
  }
  if (lines.length) {
    lines.push(
      "Worse than direct queries, as any HTTP layer in front of PostgreSQL is: each request adds HTTP parsing, routing, a second process hop and JSON encoding, on the same 2 cores as PostgreSQL and the client; the minimal server shows how much of that is the HTTP layer itself.",
      "The rest is ours: catalog lookup and query building, auth, ETags, metrics and the request log. Table reads run as statements prepared once per connection (one round trip, no per-request parse and plan); before that change the API served about 22% of direct pg here (the earlier result files).",
      "What it buys is a stable HTTP contract, auth, caching headers and replica failover, not speed; clients that need raw throughput can use the read-only PostgreSQL port.",
    );
  }
  return lines;
}
