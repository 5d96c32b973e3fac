import path from "node:path";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { freePort } from "../../runtime/pg/ports";
import { initCluster, startServer, type PgServer, type Settings } from "../../runtime/pg/server";
import { onCleanup } from "./cleanup";
import { BENCH_DB, COMMON_SETTINGS, type BenchMaster } from "./dataset";
import { makeDir, removeDir, runPg, treeBytes } from "./proc";

/** A server made by a baseline (standby, restored copy); stop() also removes its files. */
export interface BaselineServer {
  server: PgServer;
  dir: string;
  url: string;
  /** Timings of the phases that made it, ms. */
  phases: Record<string, number>;
  /** Bytes the master sent to build it (0 when it was built from files made earlier). */
  masterBytes: number;
  stop(): Promise<void>;
}

/** A disposable replica needs no crash safety (it is rebuilt, not recovered): the baselines get that too. */
export const DISPOSABLE_SETTINGS: Settings = { fsync: false, synchronous_commit: false, full_page_writes: false };

/**
 * A streaming hot standby: `pg_basebackup -X stream -R -c fast` from the master, then started as a
 * hot standby that keeps streaming from it (what RDS/CloudNativePG/Patroni do for a new replica).
 */
export async function basebackupStandby(master: BenchMaster, workRoot: string, settings: Settings = {}): Promise<BaselineServer> {
  const bin = await findPgBinaries();
  const dir = makeDir(workRoot, "cndb-bench-standby-");
  let server: PgServer | undefined;
  const stop = onCleanup(`standby ${dir}`, async () => {
    await server?.stop("immediate");
    removeDir(dir);
  });
  try {
    const dataDir = path.join(dir, "data");
    const bb = await runPg("pg_basebackup", [
      "-h", "127.0.0.1", "-p", String(master.server.port), "-U", "postgres",
      "-D", dataDir, "-X", "stream", "-R", "-c", "fast", "--no-sync",
    ]);
    const masterBytes = treeBytes(dataDir);
    const t0 = performance.now();
    server = await startServer(bin, { dataDir, port: await freePort(), settings: { ...COMMON_SETTINGS, ...DISPOSABLE_SETTINGS, hot_standby: true, ...settings } });
    return { server, dir, url: server.url(BENCH_DB), phases: { basebackup: bb.ms, start: performance.now() - t0 }, masterBytes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface Dump {
  dir: string;
  ms: number;
  bytes: number;
  remove(): void;
}

/** `pg_dump -Fd -j jobs -Z0` of the bench database: uncompressed, so its size is what the master sent. */
export async function dumpMaster(master: BenchMaster, workRoot: string, jobs: number, compress = 0): Promise<Dump> {
  const dir = makeDir(workRoot, "cndb-bench-dump-");
  const remove = onCleanup(`dump ${dir}`, () => removeDir(dir));
  try {
    const out = path.join(dir, "dump");
    const r = await runPg("pg_dump", [
      "-h", "127.0.0.1", "-p", String(master.server.port), "-U", "postgres",
      "-Fd", "-j", String(jobs), `-Z${compress}`, "-f", out, BENCH_DB,
    ]);
    return { dir: out, ms: r.ms, bytes: treeBytes(out), remove: () => void remove() };
  } catch (e) {
    await remove();
    throw e;
  }
}

/**
 * A fresh server restored from a dump: initdb, start, CREATE DATABASE, `pg_restore -j jobs`. Phases are
 * timed separately (B4 reports them per GB).
 */
export async function restoreDump(dump: Dump, workRoot: string, jobs: number, settings: Settings = {}): Promise<BaselineServer> {
  const bin = await findPgBinaries();
  const dir = makeDir(workRoot, "cndb-bench-restore-");
  let server: PgServer | undefined;
  const stop = onCleanup(`restored server ${dir}`, async () => {
    await server?.stop("immediate");
    removeDir(dir);
  });
  try {
    const dataDir = path.join(dir, "data");
    let t = performance.now();
    await initCluster(bin, { dataDir });
    const initdb = performance.now() - t;
    t = performance.now();
    server = await startServer(bin, { dataDir, port: await freePort(), settings: { ...COMMON_SETTINGS, ...DISPOSABLE_SETTINGS, ...settings } });
    await server.query(`CREATE DATABASE ${BENCH_DB}`);
    const start = performance.now() - t;
    const r = await runPg("pg_restore", ["-h", server.socketDir, "-p", String(server.port), "-U", "postgres", "-j", String(jobs), "-d", BENCH_DB, dump.dir]);
    return { server, dir, url: server.url(BENCH_DB), phases: { initdb, start, restore: r.ms }, masterBytes: 0, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
