import assert from "node:assert/strict";
import { BakeError } from "../../runtime/bake/errors";
import { matches, PatternError, quoteExact, schemaPattern, tablePattern } from "../../runtime/bake/patterns";
import { selectRelations, type Catalog, type Rel } from "../../runtime/bake/select";

describe("runtime/bake/patterns: psql name patterns", () => {
  const hit = (p: string, schema: string, name: string) => matches(tablePattern("--include-table", p), schema, name);

  it("folds unquoted letters, keeps quoted ones, and matches whole names", () => {
    assert.ok(hit("Orders", "app", "orders"));
    assert.ok(!hit("Orders", "app", "Orders"));
    assert.ok(hit('"Orders"', "app", "Orders"));
    assert.ok(!hit("order", "app", "orders"), "whole name only");
  });

  it("* and ? are wildcards, . splits schema from name, other regex characters keep their meaning", () => {
    assert.ok(hit("app.ord*", "app", "orders"));
    assert.ok(!hit("app.ord*", "other", "orders"));
    assert.ok(hit("*.orders", "other", "orders"));
    assert.ok(hit("ord?rs", "x", "orders"));
    assert.ok(hit("(orders|items)", "x", "items"));
    assert.ok(hit("t[0-9]", "x", "t7"));
    assert.ok(hit("a$b", "x", "a$b"), "$ is literal");
  });

  it("inside double quotes everything is literal, \"\" is a quote, dots included", () => {
    assert.ok(hit('"Ünï schéma"."a.b*"', "Ünï schéma", "a.b*"));
    assert.ok(!hit('"a.b*"', "x", "a.bc"));
    assert.ok(hit('"say ""hi"""', "x", 'say "hi"'));
    assert.ok(hit("täble", "x", "täble"), "non-ASCII letters are not folded or mangled");
  });

  it("rejects malformed patterns, naming the option", () => {
    assert.throws(() => tablePattern("--include-table", "a.b.c"), /--include-table "a\.b\.c": too many dotted parts/);
    assert.throws(() => tablePattern("--exclude-table", '"open'), /--exclude-table "\\"open": unterminated double quote/);
    assert.throws(() => tablePattern("--include-table", "a."), /empty name part/);
    assert.throws(() => tablePattern("--include-table", "(x"), PatternError);
    assert.throws(() => schemaPattern("--schema", "a.b"), /--schema "a\.b": a schema pattern has no dots/);
  });

  it("quoteExact makes a pattern pg_dump matches literally", () => {
    assert.equal(quoteExact("Ünï", 'we"ird*'), '"Ünï"."we""ird*"');
    assert.ok(hit(quoteExact("Ünï", 'we"ird*'), "Ünï", 'we"ird*'));
  });
});

describe("runtime/bake/select: what a bake keeps", () => {
  let oid = 100;
  const rel = (schema: string, name: string, kind: Rel["kind"] = "r", root?: number): Rel => ({ oid: ++oid, schema, name, kind, unlogged: false, root, bytes: 0, unpopulated: false });
  const customers = rel("app", "customers");
  const orders = rel("app", "orders");
  const events = rel("app", "events", "p");
  const ev1 = rel("app", "events_1", "r", events.oid);
  const ev2 = rel("app", "events_2", "r", events.oid);
  const view = rel("app", "orders_v", "v");
  const mv = rel("app", "orders_mv", "m");
  const parent = rel("app", "log");
  const child = rel("app", "log_child");
  const t1 = rel("other", "t1");
  const cat: Catalog = {
    schemas: ["app", "other", "public"],
    rels: [customers, orders, events, ev1, ev2, view, mv, parent, child, t1],
    inherits: [{ child: child.oid, parent: parent.oid }],
    fks: [{ rel: orders.oid, ref: customers.oid, name: "orders_customer_fk" }],
    viewDeps: [{ rel: view.oid, ref: orders.oid }, { rel: mv.oid, ref: view.oid }],
  };
  const names = (rs: Rel[]) => rs.map((r) => `${r.schema}.${r.name}`);

  it("keeps everything by default, and skips nothing", () => {
    const s = selectRelations(cat, {});
    assert.deepEqual(names(s.kept), names(cat.rels));
    assert.deepEqual(s.excluded, []);
    assert.deepEqual(s.excludedSchemas, []);
  });

  it("--schema keeps those schemas; the others are excluded whole", () => {
    const s = selectRelations(cat, { schemas: ["oth*"] });
    assert.deepEqual(s.schemas, ["other"]);
    assert.deepEqual(s.excludedSchemas, ["app", "public"]);
    assert.deepEqual(names(s.kept), ["other.t1"]);
  });

  it("include keeps exactly what matches; partitions follow their partitioned table", () => {
    const s = selectRelations(cat, { includeTables: ["customers", "orders", "app.events"] });
    assert.deepEqual(names(s.kept), ["app.customers", "app.orders", "app.events", "app.events_1", "app.events_2"]);
    assert.ok(names(s.excluded).includes("app.orders_v"), "views are kept only when named");
  });

  it("exclude drops a table and, with a note, the views reading it (transitively)", () => {
    const s = selectRelations(cat, { excludeTables: ["app.orders", "app.customers"] });
    assert.deepEqual(names(s.excluded), ["app.customers", "app.orders", "app.orders_v", "app.orders_mv"]);
    assert.deepEqual(s.notes, [
      "view app.orders_v left out: it reads app.orders, which is not baked",
      "materialized view app.orders_mv left out: it reads app.orders_v, which is not baked",
    ]);
  });

  it("refuses subsets that could not be restored or would differ from the master", () => {
    const fails = (opts: Parameters<typeof selectRelations>[1], re: RegExp, code: string) =>
      assert.throws(() => selectRelations(cat, opts), (e: BakeError) => e.code === code && re.test(e.message));
    fails({ includeTables: ["orders"] }, /table app\.orders has foreign key orders_customer_fk to app\.customers, which is not baked/, "subset");
    fails({ excludeTables: ["app.log"] }, /table app\.log_child inherits from app\.log/, "subset");
    fails({ includeTables: ["orders_mv", "orders", "customers"] }, /materialized view app\.orders_mv was asked for but reads app\.orders_v/, "subset");
    fails({ includeTables: ["events_1"] }, /matches partition app\.events_1 but not its partitioned table app\.events/, "option");
    fails({ excludeTables: ["app.events_2"] }, /--exclude-table "app\.events_2" matches partition/, "option");
    fails({ includeTables: ["nothing*"] }, /--include-table "nothing\*" matches no table, view or materialized view in the baked schemas \(app, other, public\)/, "option");
    fails({ schemas: ['"APP"'] }, /--schema "\\"APP\\"" matches no schema of the master \(it has: app, other, public\)/, "option");
  });

  it("a pattern naming a partition together with its root is fine", () => {
    const s = selectRelations(cat, { includeTables: ["app.events*"] });
    assert.deepEqual(names(s.kept), ["app.events", "app.events_1", "app.events_2"]);
  });
});
