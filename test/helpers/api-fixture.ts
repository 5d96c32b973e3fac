import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { newSnapshotId, SNAPSHOT_FORMAT, type SnapshotManifest } from "../../common/snapshot";
import { startTestMaster, type TestMaster } from "./pg";

export interface ApiFixture {
  master: TestMaster;
  /** The SELECT-only `reader` role over TCP (what the API uses, as in the fleet). */
  readerUrl: string;
  /** The superuser (for setup and for checking that nothing changed). */
  superUrl: string;
  snapshot: SnapshotManifest;
  /** Holds snapshot.json (the layout `cndb api --snapshot` reads). */
  snapshotDir: string;
  stop(): Promise<void>;
}

const FIXTURE_SQL = path.join(__dirname, "fixtures", "api-schema.sql");

/** A real PostgreSQL server loaded with the API fixture schema, plus a snapshot.json describing it. */
export async function startApiFixture(opts: { extraSql?: string } = {}): Promise<ApiFixture> {
  const master = await startTestMaster();
  try {
    const c = new pg.Client({ connectionString: master.url });
    await c.connect();
    try {
      await c.query(readFileSync(FIXTURE_SQL, "utf8"));
      if (opts.extraSql) await c.query(opts.extraSql);
      const snapshot = await describe(c);
      const snapshotDir = path.join(master.dir, "snapshot");
      mkdirSync(snapshotDir, { recursive: true });
      writeFileSync(path.join(snapshotDir, "snapshot.json"), JSON.stringify(snapshot, null, 2));
      const readerUrl = master.server.url("postgres", "reader", "reader-secret");
      return { master, readerUrl, superUrl: master.url, snapshot, snapshotDir, stop: () => master.stop() };
    } finally {
      await c.end();
    }
  } catch (e) {
    await master.stop();
    throw e;
  }
}

/** A manifest like the bake's (row counts exact, checksums not computed). */
export async function describe(c: pg.Client, id = newSnapshotId()): Promise<SnapshotManifest> {
  const rels = await c.query<{ schema: string; name: string; kind: string; bytes: string }>(`
    SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, pg_total_relation_size(c.oid)::text AS bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
     ORDER BY 1, 2`);
  const tables: SnapshotManifest["tables"] = [];
  for (const r of rels.rows) {
    const q = `"${r.schema.replace(/"/g, '""')}"."${r.name.replace(/"/g, '""')}"`;
    const n = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${r.kind === "p" ? "" : "ONLY "}${q}`);
    tables.push({
      schema: r.schema,
      name: r.name,
      kind: r.kind === "p" ? "partitioned" : r.kind === "m" ? "matview" : "table",
      rows: Number(n.rows[0].n),
      checksum: "not-computed",
      bytes: Number(r.bytes),
    });
  }
  const info = await c.query<{ version: string; lsn: string; now: Date; db: string }>(
    "SELECT current_setting('server_version') AS version, pg_current_wal_lsn()::text AS lsn, now(), current_database() AS db",
  );
  const i = info.rows[0];
  return {
    format: SNAPSHOT_FORMAT,
    id,
    createdAt: new Date().toISOString(),
    source: { host: "127.0.0.1", database: i.db, serverVersion: i.version, lsn: i.lsn, time: i.now.toISOString() },
    postgresMajor: Number(i.version.split(".")[0]),
    schemas: [...new Set(tables.map((t) => t.schema))],
    tables,
    pgdataBytes: 0,
  };
}
