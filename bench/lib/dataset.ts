import path from "node:path";
import pg from "pg";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { freePort } from "../../runtime/pg/ports";
import { initCluster, startServer, type PgServer, type Settings } from "../../runtime/pg/server";
import { onCleanup } from "./cleanup";
import { makeDir, removeDir, runPg } from "./proc";

/** The database every benchmark reads (pgbench tables plus one secondary index). */
export const BENCH_DB = "bench";

/**
 * Settings every server in a benchmark runs with (master, standby, restored copy, baked replica), so
 * throughput differences come from the setup, not from tuning. PostgreSQL 15 defaults otherwise.
 */
export const COMMON_SETTINGS: Settings = {
  shared_buffers: "128MB",
  max_connections: 100,
  max_wal_senders: 10,
  wal_level: "replica",
};

/** The master: no durability (it is rebuilt every run, and generation is write-bound), WAL for standbys. */
export const MASTER_SETTINGS: Settings = {
  ...COMMON_SETTINGS,
  fsync: false,
  synchronous_commit: false,
  full_page_writes: false,
  checkpoint_timeout: "30min",
  max_wal_size: "4GB",
};

/** On-disk MB per pgbench scale unit with our extra index, and of an empty database (measured on PG 15). */
export const MB_PER_SCALE = 18;
const EMPTY_DB_MB = 7.5;

export function scaleFor(targetMB: number): number {
  return Math.max(1, Math.round((targetMB - EMPTY_DB_MB) / MB_PER_SCALE));
}

export interface DatasetInfo {
  label: string;
  targetMB: number;
  pgbenchScale: number;
  rows: number;
  /** pg_database_size of the bench database. */
  dbBytes: number;
  loadMs: number;
  description: string;
}

export interface BenchMaster {
  server: PgServer;
  dir: string;
  dataDir: string;
  /** TCP URL of the bench database (trusted on 127.0.0.1: no password in the benchmarks). */
  url: string;
  stop(): Promise<void>;
}

/** A fresh PostgreSQL master on 127.0.0.1 (trust auth over loopback; replication allowed). */
export async function startMaster(workRoot: string, settings: Settings = {}): Promise<BenchMaster> {
  const bin = await findPgBinaries();
  const dir = makeDir(workRoot, "cndb-bench-master-");
  const dataDir = path.join(dir, "data");
  try {
    await initCluster(bin, { dataDir });
    const server = await startServer(bin, { dataDir, port: await freePort(), settings: { ...MASTER_SETTINGS, ...settings } });
    const stop = onCleanup(`master ${dir}`, async () => {
      await server.stop("fast");
      removeDir(dir);
    });
    return { server, dir, dataDir, url: server.url(BENCH_DB), stop };
  } catch (e) {
    removeDir(dir);
    throw e;
  }
}

/**
 * Fills the master's `bench` database with pgbench tables at the scale nearest targetMB: server-side
 * generation (fast, deterministic row contents), primary keys, plus an index on accounts(bid, aid) for
 * the filtered-list queries, then VACUUM ANALYZE and a checkpoint so every copy starts alike.
 */
export async function loadDataset(master: BenchMaster, label: string, targetMB: number): Promise<DatasetInfo> {
  const scale = scaleFor(targetMB);
  const t0 = performance.now();
  await master.server.query(`DROP DATABASE IF EXISTS ${BENCH_DB}`);
  await master.server.query(`CREATE DATABASE ${BENCH_DB}`);
  await runPg("pgbench", ["-i", "-I", "dtGvp", "-s", String(scale), "-q", "-h", master.server.socketDir, "-p", String(master.server.port), "-U", "postgres", BENCH_DB]);
  await master.server.query("CREATE INDEX pgbench_accounts_bid_aid ON pgbench_accounts (bid, aid)", [], BENCH_DB);
  await master.server.query("VACUUM ANALYZE", [], BENCH_DB);
  await master.server.query("CHECKPOINT");
  const loadMs = performance.now() - t0;
  const r = await master.server.query<{ bytes: string }>("SELECT pg_database_size($1)::bigint AS bytes", [BENCH_DB]);
  const dbBytes = Number(r.rows[0].bytes);
  return {
    label,
    targetMB,
    pgbenchScale: scale,
    rows: scale * 100_000,
    dbBytes,
    loadMs,
    description: `pgbench -i -s ${scale} (server-side generation) + index on pgbench_accounts(bid, aid), VACUUM ANALYZE`,
  };
}

/** One query on a fresh TCP connection: the "first successful query" of a new replica. */
export async function firstQuery(url: string, scale: number, timeoutMs = 5000): Promise<number> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  await c.connect();
  try {
    const aid = 1 + Math.floor(Math.random() * scale * 100_000);
    const r = await c.query("SELECT abalance FROM pgbench_accounts WHERE aid = $1", [aid]);
    if (r.rowCount !== 1) throw new Error(`first query: expected 1 row for aid ${aid}, got ${r.rowCount}`);
    return aid;
  } finally {
    await c.end();
  }
}

/** Polls firstQuery until it succeeds (a server may accept connections before it can serve the table). */
export async function waitFirstQuery(url: string, scale: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await firstQuery(url, scale);
      return;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  throw new Error(`no successful query on ${url} within ${timeoutMs} ms: ${(last as Error)?.message}`);
}
