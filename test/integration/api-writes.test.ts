import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { freePort } from "../../runtime/pg/ports";
import { startReplica, type Replica } from "../../runtime/reader/index";
import { Backends, buildApi, type ApiConfigInput } from "../../runtime/api/index";
import { startApiFixture, type ApiFixture } from "../helpers/api-fixture";
import { hashTree } from "../helpers/replica";
import { makeTestSnapshot, type TestSnapshot } from "../helpers/snapshot";

/** Every statement here would change data if it ran. */
const WRITES = [
  "INSERT INTO items (id, name) VALUES (99999, 'w')",
  "UPDATE items SET name = 'w'",
  "DELETE FROM items",
  "TRUNCATE items",
  "CREATE TABLE t_new (x int)",
  "DROP TABLE items",
  "COPY items FROM PROGRAM 'true'",
  "SELECT 1; DELETE FROM items",
  "SELECT 1 AS x; INSERT INTO items (id, name) VALUES (99998, 'w')",
  "WITH d AS (DELETE FROM items RETURNING *) SELECT count(*) FROM d",
  "WITH u AS (UPDATE items SET name = 'w' RETURNING 1) SELECT * FROM u",
  "SELECT nextval('write_seq')",
  "SELECT setval('write_seq', 100)",
  "SELECT write_it()",
  "SELECT * FROM items FOR UPDATE",
  "SELECT lo_create(0)",
  "EXPLAIN ANALYZE DELETE FROM items",
  "VALUES ((SELECT write_it()))",
  "SELECT set_config('transaction_read_only', 'off', true), write_it()",
  "COMMIT",
  "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
  "DO $$ BEGIN DELETE FROM items; END $$",
  "CALL nothing()",
];

const CONFIG: ApiConfigInput = {
  queries: {
    // Config mistakes or malice: they must still run read-only.
    sneaky: { sql: "SELECT write_it()" },
    cte: { sql: "WITH d AS (DELETE FROM items WHERE id = $1 RETURNING id) SELECT * FROM d", params: [{ name: "id", type: "integer" }] },
    seq: { sql: "SELECT nextval('write_seq')" },
    unset: { sql: "SELECT set_config('default_transaction_read_only', 'off', false)" },
    ro: { sql: "SELECT current_setting('default_transaction_read_only') AS ro" },
  },
  sql: { enabled: true },
};

/** `rolledBackOk`: statements a read-only transaction on a primary lets through (only the ROLLBACK undoes them). */
async function exerciseEveryRoute(app: FastifyInstance, table: string, opts: { writeSql?: string[]; rolledBackOk?: string[] } = {}): Promise<void> {
  const hostile = encodeURIComponent("1; DELETE FROM items; --");
  for (const url of [
    `/v1/tables/${table}/rows?id=eq.${hostile}`,
    `/v1/tables/${table}/rows?name=in.(${hostile},x)`,
    `/v1/tables/${table}/rows/${hostile}`,
    `/v1/tables/${encodeURIComponent(`${table}; DROP TABLE items`)}/rows`,
    `/v1/tables/${table}/rows?select=${hostile}`,
    `/v1/tables/${table}/rows?order=${hostile}`,
  ]) {
    // A hostile value is only ever a value: at most it matches nothing.
    const r = await app.inject({ url });
    assert.ok(r.statusCode < 500, `${url}: ${r.statusCode}`);
    if (r.statusCode === 200) assert.deepEqual(JSON.parse(r.body).rows, [], url);
  }
  for (const m of ["PUT", "DELETE", "PATCH"] as const) {
    assert.equal((await app.inject({ method: m, url: `/v1/tables/${table}/rows/1` })).statusCode, 404);
  }
  // Two requests in a row: the first tries to turn read-only off for the session, the second to write.
  const unset = await app.inject({ method: "POST", url: "/v1/sql", payload: { sql: "SELECT set_config('default_transaction_read_only', 'off', false)" } });
  assert.ok(unset.statusCode === 200 || unset.statusCode === 403, unset.body);
  for (const sql of opts.writeSql ?? WRITES) {
    const r = await app.inject({ method: "POST", url: "/v1/sql", payload: { sql } });
    if (r.statusCode === 200 && opts.rolledBackOk?.includes(sql)) continue;
    assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${sql}: ${r.statusCode} ${r.body}`);
    assert.ok(JSON.parse(r.body).error.message, sql);
  }
}

describe("read API: writes are impossible through every route", function () {
  this.timeout(90000);

  describe("against a writable server, connected as superuser (only the API's own guards stand)", () => {
    let f: ApiFixture;
    let backends: Backends;
    let app: FastifyInstance;
    let db: pg.Client;
    const state = async () =>
      (
        await db.query(`SELECT md5(string_agg(i::text, ',' ORDER BY id)) AS items, (SELECT last_value FROM write_seq) AS seq,
                               (SELECT count(*) FROM pg_class) AS rels, (SELECT count(*) FROM pg_largeobject_metadata) AS los FROM items i`)
      ).rows[0];

    before(async () => {
      f = await startApiFixture({
        extraSql: `CREATE SEQUENCE write_seq;
                   CREATE FUNCTION write_it() RETURNS int LANGUAGE sql AS $$ INSERT INTO items (id, name) VALUES (99997, 'w') RETURNING id $$;
                   CREATE PROCEDURE nothing() LANGUAGE sql AS $$ DELETE FROM items $$;`,
      });
      db = new pg.Client({ connectionString: f.superUrl });
      await db.connect();
      backends = new Backends([{ id: "w", url: f.superUrl, snapshot: f.snapshot }], { poolSize: 2 });
      app = await buildApi({ backends, config: CONFIG });
    });
    after(async () => {
      await app?.close();
      await backends?.close();
      await db?.end();
      await f?.stop();
    });

    it("table routes, named queries and POST /v1/sql change nothing", async () => {
      const before_ = await state();
      await exerciseEveryRoute(app, "items", { rolledBackOk: ["SELECT lo_create(0)"] });
      for (const url of ["/v1/queries/sneaky", "/v1/queries/cte?id=1", "/v1/queries/seq"]) {
        const r = await app.inject({ url });
        assert.equal(r.statusCode, 403, `${url}: ${r.body}`);
        assert.equal(JSON.parse(r.body).error.code, "read_only");
      }
      // Even after a named query flips the session default, the next ones are still read-only.
      await app.inject({ url: "/v1/queries/unset" });
      assert.equal((await app.inject({ url: "/v1/queries/sneaky" })).statusCode, 403);
      assert.equal((await app.inject({ method: "POST", url: "/v1/sql", payload: { sql: "SELECT write_it()" } })).statusCode, 403);
      // Pooled sessions default to read-only too, and the flip above did not outlive its request.
      assert.deepEqual(JSON.parse((await app.inject({ url: "/v1/queries/ro" })).body).rows, [{ ro: "on" }]);
      assert.deepEqual(await state(), before_);
      const d = await db.query("SELECT count(*)::int AS n FROM items WHERE id > 1000");
      assert.equal(d.rows[0].n, 0);
    });
  });

  describe("against real read-only hot standbys (two replicas of one snapshot)", () => {
    let snap: TestSnapshot;
    let replicas: Replica[] = [];
    let backends: Backends;
    let app: FastifyInstance;
    let treeBefore: string;

    before(async () => {
      snap = await makeTestSnapshot({ rows: 2000 });
      treeBefore = hashTree(snap.dir);
      replicas = await Promise.all([0, 1].map(async () => startReplica({ snapshot: snap.dir, port: await freePort(), warmup: "none" })));
      // As the superuser: the standby itself must refuse, whoever asks.
      backends = new Backends(
        replicas.map((r, i) => ({ id: `standby-${i}`, url: r.url("postgres"), snapshot: snap.manifest })),
        { poolSize: 3 },
      );
      app = await buildApi({ backends, config: { sql: { enabled: true }, queries: { q: { sql: "SELECT count(*)::int AS n FROM items" } } } });
    });
    after(async () => {
      await app?.close();
      await backends?.close();
      await Promise.all(replicas.map((r) => r.stop()));
      snap?.remove();
    });

    it("serves reads labelled with the snapshot, and every write attempt is refused", async () => {
      const r = await app.inject({ url: "/v1/tables/items/rows/7" });
      assert.equal(r.statusCode, 200);
      assert.equal(JSON.parse(r.body).row.name, "item-7");
      assert.equal(r.headers["x-snapshot-id"], snap.manifest.id);
      const tables = JSON.parse((await app.inject({ url: "/v1/tables" })).body).tables;
      assert.deepEqual(tables.map((t: { name: string; rows: number }) => [t.name, t.rows]), [["items", 2000]]);
      await exerciseEveryRoute(app, "items", { writeSql: WRITES.filter((w) => !/write_it|nothing|write_seq/.test(w)).concat("SELECT nextval('item_seq')") });
      const w = await app.inject({ method: "POST", url: "/v1/sql", payload: { sql: "WITH d AS (DELETE FROM items RETURNING 1) SELECT * FROM d" } });
      assert.equal(w.statusCode, 403);
      assert.match(JSON.parse(w.body).error.message, /read-only|recovery/);
      assert.equal(JSON.parse((await app.inject({ url: "/v1/queries/q" })).body).rows[0].n, 2000);
    });

    it("pages through the whole table across both replicas: every row once", async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const r: { rows: { id: string }[]; cursor: string | null } = JSON.parse(
          (await app.inject({ url: `/v1/tables/items/rows?select=id&limit=333&order=qty.desc${cursor ? `&cursor=${cursor}` : ""}` })).body,
        );
        seen.push(...r.rows.map((x) => Number(x.id)));
        cursor = r.cursor;
      } while (cursor);
      assert.equal(seen.length, 2000);
      assert.equal(new Set(seen).size, 2000);
    });

    it("a stopped standby costs no failed request; the snapshot's files are unchanged", async () => {
      let stop = false;
      let ok = 0;
      const failures: string[] = [];
      const workers = Array.from({ length: 4 }, async () => {
        for (let i = 1; !stop; i++) {
          const r = await app.inject({ url: `/v1/tables/items/rows/${(i % 2000) + 1}` });
          if (r.statusCode === 200) ok++;
          else failures.push(`${r.statusCode} ${r.body}`);
        }
      });
      while (ok < 100) await new Promise((r) => setTimeout(r, 10));
      await replicas[0].stop();
      const atStop = ok;
      while (ok < atStop + 300) await new Promise((r) => setTimeout(r, 10));
      stop = true;
      await Promise.all(workers);
      assert.deepEqual(failures, []);
      assert.equal(backends.replicas()[0].ready, false);
      await replicas[1].stop();
      assert.equal(hashTree(snap.dir), treeBefore);
    });
  });
});
