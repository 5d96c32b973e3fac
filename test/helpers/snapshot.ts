import { execFile } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { newSnapshotId, parseManifest, SNAPSHOT_FORMAT, type SnapshotManifest } from "../../common/snapshot";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { freePort } from "../../runtime/pg/ports";
import { chownTree, pgRunAs } from "../../runtime/pg/run-as";
import { initCluster, startServer } from "../../runtime/pg/server";

const run = promisify(execFile);

export interface TestSnapshot {
  /** The snapshot dir: `pgdata/` and `snapshot.json`. */
  dir: string;
  manifest: SnapshotManifest;
  /** The database holding the test table. */
  database: string;
  remove(): void;
}

/**
 * A snapshot dir shaped like the bake's output, for tests, without the bake: initdb, load `items`
 * (and a sequence), VACUUM FREEZE, a clean stop with wal_level=replica, then standby.signal and the
 * read-only settings. `rows` sets the table's size (about 100 bytes a row).
 */
export async function makeTestSnapshot(opts: { rows?: number; parent?: string } = {}): Promise<TestSnapshot> {
  const bin = await findPgBinaries();
  const who = pgRunAs();
  const dir = mkdtempSync(path.join(opts.parent ?? os.tmpdir(), "cndb-snap-"));
  chownTree(dir, who);
  const pgdata = path.join(dir, "pgdata");
  const database = "app";
  const rows = opts.rows ?? 1000;
  await initCluster(bin, { dataDir: pgdata });
  const server = await startServer(bin, {
    dataDir: pgdata,
    port: await freePort(),
    host: "",
    logFile: path.join(dir, "bake.log"),
    settings: { wal_level: "replica", fsync: false, full_page_writes: false, autovacuum: false },
  });
  try {
    await server.query(`CREATE DATABASE ${database}`);
    const sql = [
      "CREATE ROLE reader LOGIN",
      "CREATE SEQUENCE item_seq",
      "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL, note text)",
      `INSERT INTO items SELECT g, 'item-' || g, g % 97, repeat(md5(g::text), 2) FROM generate_series(1, ${rows}) g`,
      "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader",
      "GRANT USAGE ON SEQUENCE item_seq TO reader",
    ];
    for (const s of sql) await server.query(s, [], database);
    await server.query("VACUUM (FREEZE, ANALYZE)", [], database);
    const t = await server.query<{ rows: string; bytes: string; checksum: string; version: string; lsn: string; now: Date }>(
      `SELECT (SELECT count(*) FROM items) AS rows, pg_total_relation_size('items') AS bytes,
              (SELECT md5(string_agg(md5(i::text), '' ORDER BY md5(i::text))) FROM items i) AS checksum,
              current_setting('server_version') AS version, pg_current_wal_lsn()::text AS lsn, now()`,
      [],
      database,
    );
    const r = t.rows[0];
    await server.query("CHECKPOINT");
    await server.stop("fast");
    writeFileSync(path.join(pgdata, "standby.signal"), "");
    appendFileSync(path.join(pgdata, "postgresql.conf"), "\n# read-only replica\nhot_standby = on\ndefault_transaction_read_only = on\n");
    chownTree(pgdata, who);
    rmSync(path.join(dir, "bake.log"), { force: true });
    const du = await run("du", ["-sb", pgdata]);
    const manifest = parseManifest({
      format: SNAPSHOT_FORMAT,
      id: newSnapshotId(),
      createdAt: new Date().toISOString(),
      source: { host: "test", database, serverVersion: r.version, lsn: r.lsn, time: r.now.toISOString() },
      postgresMajor: bin.major,
      schemas: ["public"],
      tables: [{ schema: "public", name: "items", kind: "table", rows: Number(r.rows), checksum: r.checksum, bytes: Number(r.bytes) }],
      pgdataBytes: Number(du.stdout.split("\t")[0]),
    });
    writeFileSync(path.join(dir, "snapshot.json"), JSON.stringify(manifest, null, 2) + "\n");
    return { dir, manifest, database, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    await server.stop("immediate");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
