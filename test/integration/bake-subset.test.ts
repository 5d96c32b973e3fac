import assert from "node:assert/strict";
import { readdirSync, rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { bake, BakeError, startBakedSnapshot, type BakeOptions, type BakeProgress, type BakeResult } from "../../runtime/bake";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { bakeTempDir, connect, contents, userRelations } from "../helpers/fixtures/bake";
import { startTestMaster, type TestMaster } from "../helpers/pg";

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TABLE app.customers (id serial PRIMARY KEY, name text);
  CREATE TABLE app.orders (id serial PRIMARY KEY, customer_id int REFERENCES app.customers, amount int);
  CREATE TABLE app.items (id int PRIMARY KEY, label text);
  CREATE TABLE app.events (id int, at date) PARTITION BY RANGE (at);
  CREATE TABLE app.events_a PARTITION OF app.events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
  CREATE TABLE app.events_b PARTITION OF app.events FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
  CREATE TABLE app.log (id int, msg text);
  CREATE TABLE app.log_child (extra text) INHERITS (app.log);
  CREATE VIEW app.orders_v AS SELECT o.*, c.name FROM app.orders o JOIN app.customers c ON c.id = o.customer_id;
  CREATE MATERIALIZED VIEW app.items_mv AS SELECT count(*) AS n FROM app.items;
  CREATE SCHEMA other;
  CREATE TABLE other.t1 (x int);
  CREATE TABLE other.t2 (x int);
  CREATE SCHEMA "Mixed";
  CREATE TABLE "Mixed"."Upper" (x int);
  CREATE TABLE "Mixed".lower (x int);
  INSERT INTO app.customers (name) SELECT 'c' || g FROM generate_series(1, 20) g;
  INSERT INTO app.orders (customer_id, amount) SELECT g % 20 + 1, g FROM generate_series(1, 100) g;
  INSERT INTO app.items SELECT g, 'i' || g FROM generate_series(1, 10) g;
  INSERT INTO app.events SELECT g, date '2020-01-01' + g FROM generate_series(1, 600) g;
  INSERT INTO app.log VALUES (1, 'a'); INSERT INTO app.log_child VALUES (2, 'b', 'c');
  INSERT INTO other.t1 VALUES (1); INSERT INTO "Mixed"."Upper" VALUES (1), (2);`;

describe("bake: subsets (--schema, --include-table, --exclude-table)", function () {
  this.timeout(120000);
  let m: TestMaster;
  let dir: string;
  let master: pg.Client;
  before(async () => {
    m = await startTestMaster();
    await m.server.query(SCHEMA);
    dir = bakeTempDir();
    master = await connect(m.url);
  });
  after(async () => {
    await master?.end();
    await m?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Bakes, then lists what the baked replica holds and checks each relation against the master. */
  async function bakeAndRead(name: string, opts: Partial<BakeOptions>): Promise<{ result: BakeResult; rels: string[]; notes: string[] }> {
    const notes: string[] = [];
    const onProgress = (e: BakeProgress) => e.kind === "note" && notes.push(e.message!);
    const result = await bake({ source: m.url, out: path.join(dir, name), jobs: 2, onProgress, ...opts });
    const replica = await startBakedSnapshot(await findPgBinaries(), result.dir, { logFile: path.join(dir, `${name}.log`) });
    try {
      const c = await connect(replica.socketConfig("postgres"));
      try {
        const rels = await userRelations(c);
        for (const r of rels) assert.deepEqual(await contents(c, r), await contents(master, r), `${r.schema}.${r.name}`);
        return { result, rels: rels.map((r) => `${r.schema}.${r.name}`), notes };
      } finally {
        await c.end();
      }
    } finally {
      await replica.stop();
    }
  }

  it("include: exactly the named tables, partitions following their partitioned table, quoted names exact", async () => {
    const { result, rels } = await bakeAndRead("a", {
      schemas: ["app", '"Mixed"'],
      includeTables: ["app.customers", "orders", "app.events", '"Mixed"."Upper"'],
    });
    assert.deepEqual(rels, ["Mixed.Upper", "app.customers", "app.events", "app.events_a", "app.events_b", "app.orders"]);
    assert.deepEqual(result.manifest.schemas, ["Mixed", "app"]);
    assert.deepEqual(result.manifest.tables.map((t) => `${t.schema}.${t.name}`), rels);
  });

  it("exclude: everything else; a matview reading an excluded table is left out with a note", async () => {
    const { rels, notes } = await bakeAndRead("b", { excludeTables: ["app.items", "other.*", "app.event*"] });
    assert.deepEqual(rels, ["Mixed.Upper", "Mixed.lower", "app.customers", "app.log", "app.log_child", "app.orders", "app.orders_v"]);
    assert.deepEqual(notes, ["materialized view app.items_mv left out: it reads app.items, which is not baked"]);
  });

  describe("a subset that cannot be baked fails before any work, naming the cause", () => {
    const cases: Array<[string, Partial<BakeOptions>, RegExp]> = [
      ["an include pattern matching nothing", { includeTables: ["app.nomatch*"] }, /--include-table "app\.nomatch\*" matches no table, view or materialized view/],
      ["case folding: unquoted names are lower case", { includeTables: ["Mixed.Upper"] }, /--include-table "Mixed\.Upper" matches no table/],
      ["a schema pattern matching nothing", { schemas: ["nosuch"] }, /--schema "nosuch" matches no schema of the master \(it has: Mixed, app, other, public\)/],
      ["a foreign key to a table left out", { includeTables: ["app.orders"] }, /table app\.orders has foreign key orders_customer_id_fkey to app\.customers, which is not baked/],
      ["an inheritance parent left out", { includeTables: ["app.log_child"] }, /table app\.log_child inherits from app\.log, which is not baked/],
      ["a named view reading a table left out", { includeTables: ["app.orders_v", "app.orders"] }, /view app\.orders_v was asked for but reads app\.customers/],
      ["a partition named without its partitioned table", { excludeTables: ["app.events_b"] }, /--exclude-table "app\.events_b" matches partition app\.events_b but not its partitioned table app\.events/],
      ["a bad pattern", { includeTables: ['app."unterminated'] }, /unterminated double quote/],
    ];
    for (const [what, opts, err] of cases) {
      it(what, async () => {
        await assert.rejects(bake({ source: m.url, out: path.join(dir, "never"), ...opts }), (e: Error) => {
          assert.ok(e instanceof BakeError, e.message);
          assert.match(e.message, err);
          return true;
        });
        assert.ok(!readdirSync(dir).some((f) => f.includes("never")), "nothing left behind");
      });
    }
  });
});
