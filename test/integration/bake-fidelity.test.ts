import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { parseManifest } from "../../common/snapshot";
import { bake, startBakedSnapshot, type BakeProgress, type BakeResult } from "../../runtime/bake";
import { CHECKSUM_SESSION, largeObjectsSum, tableSum } from "../../runtime/bake/checksum";
import { verifyReplica } from "../../runtime/bake/verify";
import { findPgBinaries, type PgBinaries } from "../../runtime/pg/binaries";
import type { PgServer } from "../../runtime/pg/server";
import { bakeTempDir, connect, contents, DEMANDING_SCHEMA, schemaDump, userRelations, withDatabase } from "../helpers/fixtures/bake";
import { startTestMaster, type TestMaster } from "../helpers/pg";

const DB = "shop ✓";

describe("bake: fidelity on a demanding schema", function () {
  this.timeout(120000);
  let m: TestMaster;
  let bin: PgBinaries;
  let dir: string;
  let out: string;
  let result: BakeResult;
  let replica: PgServer;
  let master: pg.Client;
  let copy: pg.Client;
  const events: BakeProgress[] = [];


  before(async () => {
    bin = await findPgBinaries();
    m = await startTestMaster();
    await m.server.query(`CREATE DATABASE "${DB}"`);
    await m.server.query(DEMANDING_SCHEMA, [], DB);
    await m.server.query(`ALTER DATABASE "${DB}" SET search_path = app, public; COMMENT ON DATABASE "${DB}" IS 'the shop'`);
    dir = bakeTempDir();
    out = path.join(dir, "snap");
    result = await bake({ source: withDatabase(m.url, DB), out, jobs: 2, onProgress: (e) => events.push(e) });
    replica = await startBakedSnapshot(bin, out, { host: "127.0.0.1", logFile: path.join(dir, "replica.log") });
    master = await connect(withDatabase(m.url, DB));
    copy = await connect(replica.socketConfig(DB));
  });
  after(async () => {
    await master?.end();
    await copy?.end();
    await replica?.stop();
    await m?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes pgdata and a manifest describing the snapshot, and nothing else", () => {
    assert.deepEqual(readdirSync(out).sort(), ["pgdata", "snapshot.json"]);
    assert.deepEqual(readdirSync(dir).sort(), ["replica.log", "snap"], "the build dir beside --out is gone");
    const manifest = parseManifest(JSON.parse(readFileSync(path.join(out, "snapshot.json"), "utf8")));
    assert.deepEqual(manifest, result.manifest);
    assert.equal(manifest.source.database, DB);
    assert.equal(manifest.source.host, "127.0.0.1");
    assert.match(manifest.source.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(manifest.postgresMajor, bin.major);
    assert.deepEqual(manifest.schemas, ["app", "audit", "public", "Ünïcode schéma"]);
    const byName = new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t]));
    assert.equal(byName.get("app.orders")?.rows, 2000);
    assert.equal(byName.get("app.events")?.kind, "partitioned");
    assert.equal(byName.get("app.events")?.rows, 900);
    assert.equal(byName.get("app.daily_sales")?.kind, "matview");
    assert.equal(byName.get("audit.log")?.rows, 1, "an inheritance parent counts its own rows only");
    assert.ok(byName.get("Ünïcode schéma.Mixed ✓ Table"));
    assert.ok(manifest.pgdataBytes > 10_000_000);
    assert.ok(existsSync(path.join(out, "pgdata", "standby.signal")));
  });

  it("reported every phase with elapsed times and table counts", () => {
    const phases = events.filter((e) => e.kind === "end").map((e) => e.phase);
    assert.deepEqual(phases, ["connect", "dump", "restore", "freeze", "verify", "install"]);
    const dumpEnd = events.find((e) => e.phase === "dump" && e.kind === "end")!;
    assert.equal(dumpEnd.tablesDone, dumpEnd.tablesTotal);
    assert.ok(dumpEnd.tablesTotal! >= 15);
    assert.ok(events.every((e, i) => i === 0 || e.elapsedMs >= events[i - 1].elapsedMs));
  });

  it("starts as a standby and every table, partition, matview and view reads exactly as on the master", async () => {
    assert.equal((await copy.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, true);
    const rels = await userRelations(master);
    assert.deepEqual(await userRelations(copy), rels);
    assert.ok(rels.length >= 22);
    for (const r of rels) {
      assert.deepEqual(await contents(copy, r), await contents(master, r), `${r.schema}.${r.name}`);
    }
  });

  it("keeps the definitions: types, domains, indexes, constraints, comments, functions, triggers", async () => {
    const a = await schemaDump(bin.bindir, { url: withDatabase(m.url, DB), database: DB });
    const b = await schemaDump(bin.bindir, { socketDir: replica.socketDir, port: replica.port, database: DB });
    // the one intended change: unlogged tables are baked logged (a standby cannot read unlogged ones)
    assert.equal(b, a.replace("CREATE UNLOGGED TABLE audit.scratch", "CREATE TABLE audit.scratch").replace("CREATE UNLOGGED SEQUENCE audit.scratch_id_seq", "CREATE SEQUENCE audit.scratch_id_seq"));
    assert.match(a, /CREATE INDEX orders_placed_brin ON app\.orders USING brin/);
    assert.match(a, /COMMENT ON TABLE "Ünïcode schéma"\."Mixed ✓ Table" IS 'quoted ✓ identifiers'/);
  });

  it("keeps sequence positions, large objects, database settings and comment", async () => {
    const seqs = "SELECT schemaname || '.' || sequencename AS s, last_value FROM pg_sequences ORDER BY 1";
    const want = (await master.query(seqs)).rows;
    assert.deepEqual((await copy.query(seqs)).rows, want);
    assert.ok(want.find((r) => r.s === "app.ticket_seq" && r.last_value === "1507"));
    const los = "SELECT oid::int8 AS oid, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY 1";
    const wantLo = (await master.query(los)).rows;
    assert.equal(wantLo.length, 2);
    assert.deepEqual((await copy.query(los)).rows, wantLo);
    const fresh = await connect(replica.socketConfig(DB));
    await fresh.query("RESET search_path");
    assert.equal((await fresh.query("SHOW search_path")).rows[0].search_path, "app, public");
    assert.equal((await fresh.query("SELECT shobj_description(oid, 'pg_database') AS d FROM pg_database WHERE datname = current_database()")).rows[0].d, "the shop");
    await fresh.end();
  });

  it("sorts text with the master's collation", async () => {
    const sql = "SELECT string_agg(x, ',' ORDER BY x) AS s FROM unnest(ARRAY['b', 'a', 'B', 'é', 'e', 'Z']) x";
    assert.equal((await copy.query(sql)).rows[0].s, (await master.query(sql)).rows[0].s);
    const coll = "SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()";
    assert.deepEqual((await copy.query(coll)).rows, (await master.query(coll)).rows);
  });

  it("every row is frozen and every page all-visible, so reads never set hint bits", async () => {
    const rels = await copy.query<{ r: string; relpages: number; relallvisible: number; frozen: string }>(
      `SELECT c.oid::regclass::text AS r, c.relpages, c.relallvisible, c.relfrozenxid::text AS frozen FROM pg_class c
        WHERE c.relkind IN ('r', 'm') AND c.relnamespace::regnamespace::text !~ '^(pg_|information_schema)'`,
    );
    assert.ok(rels.rows.length >= 18);
    for (const r of rels.rows) {
      assert.equal(r.relallvisible, r.relpages, `${r.r}: all pages visible`);
      const x = await copy.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${r.r} WHERE xmin::text::bigint >= $1::bigint`, [r.frozen]);
      assert.equal(x.rows[0].n, "0", `${r.r}: every row's xmin precedes relfrozenxid ${r.frozen}`);
    }
  });

  it("verification catches a replica that differs from the master", async () => {
    const kind = { table: "r", partitioned: "p", matview: "m" } as const;
    const tables = result.manifest.tables.map((t) => ({ schema: t.schema, name: t.name, kind: kind[t.kind], rows: t.rows, checksum: t.checksum }));
    const expected = { tables, sequences: new Map([["app.ticket_seq", { before: "1507/true", after: "1507/true" }]]), largeObjects: await largeObjectsSum(copy) };
    await verifyReplica(replica, DB, expected, result.manifest.schemas); // as baked: passes
    tables.find((t) => t.name === "orders")!.checksum = "md5sum64:1";
    tables.find((t) => t.name === "scalars")!.rows = 5;
    expected.sequences.set("app.ticket_seq", { before: "1500/true", after: "1500/true" });
    await assert.rejects(verifyReplica(replica, DB, expected, result.manifest.schemas), (e: Error) => {
      assert.match(e.message, /app\.orders: same row count but different content/);
      assert.match(e.message, /app\.scalars: 4 rows on the replica, 5 on the master/);
      assert.match(e.message, /sequence app\.ticket_seq: 1507\/true on the replica, 1500\/true on the master/);
      return true;
    });
  });

  it("verification recomputes with the algorithm each expected checksum names, and refuses an unknown one", async () => {
    const kind = { table: "r", partitioned: "p", matview: "m" } as const;
    assert.ok(result.manifest.tables.every((t) => /^(hte64:|unpopulated$)/.test(t.checksum)), "new bakes write hte64");
    const summer = await connect(withDatabase(m.url, DB));
    await summer.query(CHECKSUM_SESSION);
    // the earlier format, recomputed on the master: a manifest written with it still verifies
    const tables = [];
    for (const t of result.manifest.tables) {
      const s = { schema: t.schema, name: t.name, kind: kind[t.kind], unpopulated: t.checksum === "unpopulated" };
      tables.push({ ...s, ...(await tableSum(summer, s, "md5sum64")) });
    }
    await summer.end();
    assert.ok(tables.some((t) => t.checksum.startsWith("md5sum64:")));
    const expected = { tables, sequences: new Map(), largeObjects: await largeObjectsSum(copy) };
    await verifyReplica(replica, DB, expected, result.manifest.schemas, undefined, undefined, 2);
    tables[0].checksum = "sha9:1";
    await assert.rejects(verifyReplica(replica, DB, expected, result.manifest.schemas), /cannot verify against this manifest: .*unknown checksum algorithm "sha9"; known: hte64, md5sum64/);
  });

  describe("writes are refused on the baked replica through every path", () => {
    const RO = /read-only transaction|during recovery/;
    const attempts: Array<[string, string | string[], RegExp]> = [
      ["INSERT", "INSERT INTO app.customers (email, name) VALUES ('z@z.z', 'z')", RO],
      ["UPDATE", "UPDATE app.orders SET amount = 0", RO],
      ["DELETE", "DELETE FROM audit.log", RO],
      ["TRUNCATE", "TRUNCATE app.bookings", RO],
      ["COPY FROM", "COPY app.scalars (id) FROM PROGRAM 'echo 99'", RO],
      ["CREATE TABLE", "CREATE TABLE app.t (x int)", RO],
      ["DROP TABLE", "DROP TABLE app.bookings", RO],
      ["ALTER TABLE", "ALTER TABLE app.orders ADD COLUMN y int", RO],
      ["CREATE ROLE", "CREATE ROLE intruder", RO],
      ["REFRESH MATERIALIZED VIEW", "REFRESH MATERIALIZED VIEW app.daily_sales", RO],
      ["VACUUM", "VACUUM app.orders", RO],
      ["SET TRANSACTION READ WRITE", ["BEGIN", "SET TRANSACTION READ WRITE"], /cannot set transaction read-write mode during recovery/],
      ["default_transaction_read_only = off", ["SET default_transaction_read_only = off", "INSERT INTO audit.log VALUES (9, now(), 'x')"], RO],
      ["nextval", "SELECT nextval('app.ticket_seq')", RO],
      ["setval", "SELECT setval('app.ticket_seq', 1)", RO],
      ["temp table", "CREATE TEMP TABLE tmp (x int)", RO],
      ["large object write", "SELECT lo_from_bytea(0, 'x')", RO],
      ["UPDATE through a trigger", "UPDATE audit.changes SET what = 'x' WHERE id = 1", RO],
    ];
    for (const [what, sql, err] of attempts) {
      it(`${what} (as the superuser)`, async () => {
        const c = await connect(replica.socketConfig(DB));
        try {
          const stmts = Array.isArray(sql) ? sql : [sql];
          for (const s of stmts.slice(0, -1)) await c.query(s);
          await assert.rejects(c.query(stmts[stmts.length - 1]), err);
        } finally {
          await c.end();
        }
      });
    }
    it("nothing changed", async () => {
      assert.equal((await copy.query("SELECT count(*)::int AS n FROM app.customers")).rows[0].n, 200);
      assert.equal((await copy.query("SELECT last_value FROM app.ticket_seq")).rows[0].last_value, "1507");
    });
  });

  describe("the reader role", () => {
    let reader: pg.Client;
    before(async () => {
      reader = new pg.Client({ connectionString: `postgres://reader@127.0.0.1:${replica.port}/${encodeURIComponent(DB)}` });
      await reader.connect(); // over loopback TCP, no password: the bake set none
    });
    after(async () => reader?.end());

    it("reads tables, views, matviews, sequences and large objects of the baked schemas", async () => {
      assert.equal((await reader.query("SELECT count(*)::int AS n FROM app.orders")).rows[0].n, 2000);
      assert.equal((await reader.query(`SELECT count(*)::int AS n FROM "Ünïcode schéma"."mv ✓"`)).rows[0].n, 2);
      assert.ok((await reader.query("SELECT * FROM app.big_spenders")).rowCount! > 0);
      assert.equal((await reader.query("SELECT last_value FROM app.ticket_seq")).rows[0].last_value, "1507");
      assert.equal((await reader.query("SELECT app.order_count(1) AS n")).rows[0].n, "10");
      const lo = await reader.query("SELECT convert_from(lo_get(min(oid)), 'UTF8') AS s FROM pg_largeobject_metadata");
      assert.equal(lo.rows[0].s, "large object ✓");
    });

    it("has SELECT and nothing else", async () => {
      const role = await reader.query("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = 'reader'");
      assert.deepEqual(role.rows[0], { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false });
      const privs = await reader.query(
        `SELECT DISTINCT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'reader'`,
      );
      assert.deepEqual(privs.rows.map((r) => r.privilege_type), ["SELECT"]);
      await assert.rejects(reader.query("SELECT app.secret_count()"), /permission denied for function secret_count/);
      await assert.rejects(reader.query("SELECT pg_promote()"), /permission denied for function pg_promote/);
      await assert.rejects(reader.query("ALTER SYSTEM SET work_mem = '1GB'"), /must be superuser|permission denied/);
      await assert.rejects(reader.query("DELETE FROM app.orders"), /permission denied|read-only/);
    });

    it("cannot reach other databases; the superuser cannot connect over TCP", async () => {
      const other = new pg.Client({ connectionString: `postgres://reader@127.0.0.1:${replica.port}/postgres` });
      await assert.rejects(other.connect(), /permission denied for database|not have CONNECT privilege/);
      const su = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${replica.port}/${encodeURIComponent(DB)}` });
      await assert.rejects(su.connect(), /no pg_hba\.conf entry/);
      const withPw = new pg.Client({ connectionString: `postgres://postgres:${m.password}@127.0.0.1:${replica.port}/${encodeURIComponent(DB)}` });
      await assert.rejects(withPw.connect(), /no pg_hba\.conf entry/);
    });

    it("no master role or password is in the image", async () => {
      const roles = await copy.query("SELECT rolname, rolpassword IS NOT NULL AS has_pw FROM pg_authid WHERE rolname !~ '^pg_' ORDER BY 1");
      assert.deepEqual(roles.rows, [{ rolname: "postgres", has_pw: false }, { rolname: "reader", has_pw: false }]);
      const owners = await copy.query("SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relnamespace::regnamespace::text !~ '^(pg_|information_schema)'");
      assert.deepEqual(owners.rows, [{ o: "postgres" }]);
    });
  });
});
