import { execFile } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { READER_ROLE } from "../../common/contract";
import type { PgBinaries } from "../pg/binaries";
import { freePort } from "../pg/ports";
import { chownTree, pgRunAs } from "../pg/run-as";
import { initCluster, startServer, type PgServer, type Settings } from "../pg/server";
import { applyDatabaseSettings, createDatabaseSql, type DatabaseInfo } from "./database";
import { dumpTableData } from "./dump";
import { throwIfAborted } from "./errors";
import { quoteExact } from "./patterns";
import { runPgProgram } from "./proc";
import { FINAL_STOP_SETTINGS, pgHba, replicaConf, RESTORE_SETTINGS, scramVerifier } from "./replica-config";

const run = promisify(execFile);

/** Our own sessions on the restore server: no timeouts, writable whatever the restored database says. */
const OWN_SESSION = "SET statement_timeout = 0; SET lock_timeout = 0; SET default_transaction_read_only = off";

export interface RestoreContext {
  bin: PgBinaries;
  pgdata: string;
  /** Logs go here (never into PGDATA). */
  workDir: string;
  jobs: number;
  signal?: AbortSignal;
  /** Every server started is registered so a failing bake can stop it. */
  track: (s: PgServer) => void;
}

async function startRestoreServer(ctx: RestoreContext, settings: Settings, log: string): Promise<PgServer> {
  const s = await startServer(ctx.bin, {
    dataDir: ctx.pgdata,
    port: await freePort(),
    host: "",
    logFile: path.join(ctx.workDir, log),
    settings,
  });
  ctx.track(s);
  return s;
}

async function withClient<T>(s: PgServer, db: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(s.socketConfig(db));
  c.on("error", () => undefined);
  await c.connect();
  try {
    await c.query(OWN_SESSION);
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** initdb, then a socket-only server tuned for loading, with the master's database created in it. */
export async function prepareCluster(ctx: RestoreContext, db: DatabaseInfo): Promise<PgServer> {
  // 1 MB WAL segments: the baked PGDATA keeps one or two segments, not 32 MB of them
  await initCluster(ctx.bin, { dataDir: ctx.pgdata, walSegmentMB: 1 });
  throwIfAborted(ctx.signal);
  const s = await startRestoreServer(ctx, RESTORE_SETTINGS, "restore.log");
  await withClient(s, "template1", async (c) => {
    if (db.name !== "template1") await c.query(`DROP DATABASE IF EXISTS ${quoteExact(db.name)}`);
    try {
      await c.query(createDatabaseSql(db, ctx.bin.major));
    } catch (e) {
      const msg = (e as Error).message;
      if (/locale|collation/i.test(msg)) {
        throw new Error(`the master's database uses LC_COLLATE=${db.collate} LC_CTYPE=${db.ctype}${db.locale ? ` locale ${db.locale}` : ""}, which this machine's PostgreSQL cannot create (${msg}): install that locale (Debian: the locales package, then locale-gen)`);
      }
      throw e;
    }
  });
  return s;
}

/** pg_restore -j N into the database, reporting tables and bytes of TABLE DATA done. */
export async function runRestore(ctx: RestoreContext, s: PgServer, dumpDir: string, database: string, onProgress: (tablesDone: number, tablesTotal: number, bytesDone: number, bytesTotal: number) => void): Promise<void> {
  const items = await dumpTableData(ctx.bin, dumpDir);
  const size = new Map<number, number>();
  for (const id of items.keys()) {
    const f = path.join(dumpDir, `${id}.dat`);
    size.set(id, existsSync(f) ? statSync(f).size : 0);
  }
  const bytesTotal = [...size.values()].reduce((a, b) => a + b, 0);
  const started: number[] = [];
  const finished = new Set<number>();
  const byName = new Map<string, number[]>();
  for (const [id, rest] of items) {
    const name = rest.split(" ").slice(0, 2).join(".");
    byName.set(name, [...(byName.get(name) ?? []), id]);
  }
  const report = () => {
    // serial pg_restore prints no "finished item": an item is done when the next starts
    const done = ctx.jobs === 1 ? new Set(started.slice(0, -1)) : finished;
    let bytes = 0;
    for (const id of done) bytes += size.get(id) ?? 0;
    onProgress(done.size, items.size, bytes, bytesTotal);
  };
  const args = [
    "-h", s.socketDir, "-p", String(s.port), "-U", "postgres", "-d", database,
    "-j", String(ctx.jobs), "-v", "--exit-on-error",
    "--no-owner", "--no-privileges", "--no-tablespaces", "--no-publications", "--no-subscriptions", "--no-security-labels",
    dumpDir,
  ];
  await runPgProgram(ctx.bin.path("pg_restore"), args, {
    signal: ctx.signal,
    env: { PGOPTIONS: "-c statement_timeout=0 -c default_transaction_read_only=off" },
    onStderrLine: (line) => {
      let m = /^pg_restore: finished item (\d+) TABLE DATA /.exec(line);
      if (m && items.has(Number(m[1]))) {
        finished.add(Number(m[1]));
        report();
        return;
      }
      m = /^pg_restore: processing data for table "(.*)"$/.exec(line);
      if (m) {
        const ids = byName.get(m[1]) ?? [];
        const next = ids.find((id) => !started.includes(id));
        if (next !== undefined) started.push(next);
        report();
      }
    },
  });
  if (ctx.jobs === 1) started.push(-1);
  report();
}

/**
 * After the load: tables the master had unlogged become logged (a standby cannot read unlogged
 * relations), the master's database settings and comment come back, the reader role is created with
 * SELECT on the baked schemas only, and SECURITY DEFINER functions (owned by the bake's superuser now)
 * lose EXECUTE for PUBLIC so they cannot lend the reader superuser rights.
 */
export async function finishDatabase(ctx: RestoreContext, s: PgServer, db: DatabaseInfo, schemas: string[], readerPassword?: string): Promise<void> {
  await withClient(s, db.name, async (c) => {
    const unlogged = await c.query<{ q: string; kind: string }>(
      `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS q, c.relkind::text AS kind
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'S') ORDER BY c.relkind DESC`,
    );
    for (const r of unlogged.rows) {
      // tables first (their owned sequences follow them); sequences still unlogged after that
      const still = await c.query(`SELECT 1 FROM pg_catalog.pg_class WHERE oid = $1::regclass AND relpersistence = 'u'`, [r.q]);
      if (still.rowCount) await c.query(`ALTER ${r.kind === "r" ? "TABLE" : "SEQUENCE"} ${r.q} SET LOGGED`);
    }

    const role = quoteExact(READER_ROLE);
    await c.query(`DROP ROLE IF EXISTS ${role}`);
    const password = readerPassword !== undefined ? ` PASSWORD '${scramVerifier(readerPassword)}'` : "";
    await c.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT${password}`);
    const dbs = await c.query<{ datname: string }>("SELECT datname FROM pg_catalog.pg_database");
    for (const d of dbs.rows) await c.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${quoteExact(d.datname)} FROM PUBLIC`);
    await c.query(`GRANT CONNECT ON DATABASE ${quoteExact(db.name)} TO ${role}`);
    for (const schema of schemas) {
      const q = quoteExact(schema);
      await c.query(`GRANT USAGE ON SCHEMA ${q} TO ${role}`);
      await c.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${q} TO ${role}`);
      await c.query(`GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${q} TO ${role}`);
    }
    // large objects belong to no schema; they are baked data, so the reader may read them
    await c.query(`DO $$ DECLARE o oid; BEGIN
      FOR o IN SELECT oid FROM pg_catalog.pg_largeobject_metadata LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON LARGE OBJECT %s TO ${READER_ROLE}', o);
      END LOOP; END $$`);
    await c.query(`DO $$ DECLARE f regprocedure; BEGIN
      FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', f);
      END LOOP; END $$`);
    await applyDatabaseSettings(c, db);
  });
}

/**
 * VACUUM (FREEZE, ANALYZE) every table, `jobs` at a time, then each database as a whole (catalogs
 * included), so that reads on the replica never set hint bits; then CHECKPOINT and a clean stop.
 */
export async function freeze(ctx: RestoreContext, s: PgServer, database: string, onTable: (done: number, total: number) => void): Promise<void> {
  const tables = await withClient(s, database, async (c) =>
    (await c.query<{ q: string }>(
      `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS q FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
        ORDER BY pg_catalog.pg_relation_size(c.oid) DESC`,
    )).rows.map((r) => r.q),
  );
  let next = 0;
  let done = 0;
  const worker = () =>
    withClient(s, database, async (c) => {
      while (next < tables.length) {
        throwIfAborted(ctx.signal);
        const t = tables[next++];
        await c.query(`VACUUM (FREEZE, ANALYZE) ${t}`);
        onTable(++done, tables.length);
      }
    });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.jobs, tables.length)) }, worker));
  const dbs = await withClient(s, "template1", async (c) => (await c.query<{ datname: string }>("SELECT datname FROM pg_catalog.pg_database WHERE datallowconn")).rows);
  for (const d of dbs) {
    throwIfAborted(ctx.signal);
    await withClient(s, d.datname, (c) => c.query(d.datname === database ? "VACUUM (FREEZE, ANALYZE)" : "VACUUM (FREEZE)"));
  }
  await withClient(s, "template1", (c) => c.query("CHECKPOINT"));
  await s.stop("fast");
  if ((await s.exited) !== 0) throw new Error(`the restore server did not stop cleanly:\n${s.logTail()}`);
}

/**
 * Checkpoints after the load recycle old WAL segments into future ones (as many as the load wrote,
 * up to max_wal_size): after a clean stop they hold nothing, yet would ship in every image. Keeps the
 * segment of the last checkpoint and the next (a record may cross into it); removes the later ones.
 */
async function dropRecycledWal(ctx: RestoreContext): Promise<void> {
  const { stdout } = await run(ctx.bin.path("pg_controldata"), [ctx.pgdata], { env: { ...process.env, LC_ALL: "C" } });
  const state = /Database cluster state:\s+(.+)/.exec(stdout)?.[1].trim();
  const redo = /Latest checkpoint's REDO WAL file:\s+([0-9A-F]{24})/.exec(stdout)?.[1];
  if (state !== "shut down" || !redo) throw new Error(`unexpected pg_controldata output after the final stop (state ${state}, REDO file ${redo})`);
  const keepUpTo = redo.slice(0, 16) + (parseInt(redo.slice(16), 16) + 1).toString(16).toUpperCase().padStart(8, "0");
  const walDir = path.join(ctx.pgdata, "pg_wal");
  for (const f of readdirSync(walDir)) {
    if (/^[0-9A-F]{24}$/.test(f) && f.slice(0, 8) === redo.slice(0, 8) && f > keepUpTo) rmSync(path.join(walDir, f));
  }
}

/**
 * The last start and clean stop run with wal_level=replica (else the standby refuses to start), then
 * the replica configuration: standby.signal, hot-standby settings, the reader's pg_hba.
 */
export async function sealForStandby(ctx: RestoreContext, readerHasPassword: boolean): Promise<void> {
  const s = await startRestoreServer(ctx, FINAL_STOP_SETTINGS, "final-stop.log");
  await s.stop("fast");
  if ((await s.exited) !== 0) throw new Error(`the final stop was not clean:\n${s.logTail()}`);
  await dropRecycledWal(ctx);
  appendFileSync(path.join(ctx.pgdata, "postgresql.conf"), replicaConf());
  writeFileSync(path.join(ctx.pgdata, "pg_hba.conf"), pgHba(readerHasPassword), { mode: 0o600 });
  writeFileSync(path.join(ctx.pgdata, "standby.signal"), "", { mode: 0o600 });
  // the bake's command line (socket dir, ports) is no part of the snapshot
  rmSync(path.join(ctx.pgdata, "postmaster.opts"), { force: true });
  chownTree(ctx.pgdata, pgRunAs());
}
