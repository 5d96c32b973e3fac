import assert from "node:assert/strict";
import { quoteIdent, type Column, type Table } from "../../runtime/api/catalog";
import { decodeCursor, encodeCursor } from "../../runtime/api/cursor";
import { ApiError } from "../../runtime/api/errors";
import { PREPARED_PER_CONNECTION, statementName } from "../../runtime/api/exec";
import { buildRowQuery, buildRowsQuery, keysetAfter, parseList, type Param } from "../../runtime/api/rows";

function table(name: string, cols: Partial<Column>[], pk: string[]): Table {
  const columns = cols.map((c) => ({ name: c.name!, type: c.type ?? "integer", notNull: c.notNull ?? false, category: c.category ?? "N", sortable: c.sortable ?? true }));
  const byName = new Map(columns.map((c) => [c.name, c]));
  return {
    schema: "public",
    name,
    kind: "table",
    sql: `"public".${quoteIdent(name)}`,
    columns,
    byName,
    primaryKey: pk,
    key: pk.length
      ? pk.map((n) => ({ name: n, sql: quoteIdent(n), cast: byName.get(n)!.type, notNull: true as const }))
      : [
          { name: "tableoid", sql: "tableoid", cast: "oid", notNull: true },
          { name: "ctid", sql: "ctid", cast: "tid", notNull: true },
        ],
    rows: 10,
  };
}

const items = table(
  "items",
  [
    { name: "id", notNull: true },
    { name: "name", type: "text", category: "S", notNull: true },
    { name: "price", type: "numeric(10,2)" },
    { name: "active", type: "boolean", category: "B" },
    { name: "doc", type: "json", category: "U", sortable: false },
    { name: "tags", type: "text[]", category: "A" },
    { name: 'we"ird', type: "text", category: "S" },
  ],
  ["id"],
);
const limits = { defaultLimit: 100, maxLimit: 1000 };

function apiError(fn: () => unknown, code: string, field?: string): ApiError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected an ApiError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, 400);
    if (field !== undefined) assert.equal(e.field, field);
    assert.ok(e.message.length > 10);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe("runtime/api rows: query building", () => {
  it("parses lists with quotes, escapes and empty items", () => {
    assert.deepEqual(parseList("1,2,3", "f"), ["1", "2", "3"]);
    assert.deepEqual(parseList('"a,b",c,"d\\"e"', "f"), ["a,b", "c", 'd"e']);
    assert.deepEqual(parseList("", "f"), []);
    assert.deepEqual(parseList("a,", "f"), ["a", ""]);
    apiError(() => parseList('"abc', "f"), "invalid_list", "f");
    apiError(() => parseList('"a"b', "f"), "invalid_list", "f");
  });

  it("puts only catalog names in the SQL and every value in a parameter cast to its column type", () => {
    const hostile = "1'; DROP TABLE items; --";
    const q = buildRowsQuery(items, { id: `eq.${hostile}`, name: ["like.*a*", "not.ilike.b%"], price: "in.(1,\"2,5\")", active: "is.true", select: "id,name" }, limits);
    assert.ok(!q.sql.includes("DROP"), q.sql);
    assert.match(q.sql, /"id" = \$1::integer/);
    assert.match(q.sql, /"name" LIKE \$2/);
    assert.match(q.sql, /NOT \("name" ILIKE \$3\)/);
    assert.match(q.sql, /"price" = ANY\(\$4::numeric\(10,2\)\[\]\)/);
    assert.match(q.sql, /"active" IS TRUE/);
    assert.deepEqual(
      q.params.map((p) => p.value),
      [hostile, "%a%", "b%", ["1", "2,5"]],
    );
    assert.deepEqual(q.columns, ["id", "name"]);
    assert.match(q.sql, /ORDER BY "id" ASC NULLS LAST LIMIT 101$/);
  });

  it("quotes odd column names and casts non-text columns for like", () => {
    const q = buildRowsQuery(items, { 'we"ird': "eq.x", price: "like.1*" }, limits);
    assert.match(q.sql, /"we""ird" = \$1::text/);
    assert.match(q.sql, /"price"::text LIKE \$2/);
  });

  it("maps each operator", () => {
    const ops: [string, RegExp][] = [
      ["eq.1", /"id" = \$1/],
      ["neq.1", /"id" <> \$1/],
      ["lt.1", /"id" < \$1/],
      ["lte.1", /"id" <= \$1/],
      ["gt.1", /"id" > \$1/],
      ["gte.1", /"id" >= \$1/],
      ["is.null", /"id" IS NULL/],
      ["is.notnull", /"id" IS NOT NULL/],
      ["not.eq.1", /NOT \("id" = \$1/],
    ];
    for (const [f, re] of ops) assert.match(buildRowsQuery(items, { id: f }, limits).sql, re, f);
  });

  it("refuses what it cannot express, naming the field", () => {
    apiError(() => buildRowsQuery(items, { nope: "eq.1" }, limits), "unknown_column", "nope");
    apiError(() => buildRowsQuery(items, { id: "1" }, limits), "invalid_filter", "id");
    apiError(() => buildRowsQuery(items, { id: "like" }, limits), "invalid_filter", "id");
    apiError(() => buildRowsQuery(items, { id: "between.1" }, limits), "unknown_operator", "id");
    apiError(() => buildRowsQuery(items, { doc: "eq.{}" }, limits), "unsupported_operator", "doc");
    apiError(() => buildRowsQuery(items, { tags: "in.(a)" }, limits), "unsupported_operator", "tags");
    apiError(() => buildRowsQuery(items, { name: "is.true" }, limits), "unsupported_operator", "name");
    apiError(() => buildRowsQuery(items, { active: "is.maybe" }, limits), "invalid_value", "active");
    apiError(() => buildRowsQuery(items, { id: "in.1,2" }, limits), "invalid_list", "id");
    apiError(() => buildRowsQuery(items, { select: "id,,name" }, limits), "invalid_select", "select");
    apiError(() => buildRowsQuery(items, { select: "id,secret" }, limits), "unknown_column", "select");
    apiError(() => buildRowsQuery(items, { order: "doc" }, limits), "unsortable_column", "order");
    apiError(() => buildRowsQuery(items, { order: "id.up" }, limits), "invalid_order", "order");
    apiError(() => buildRowsQuery(items, { order: "id,id.desc" }, limits), "invalid_order", "order");
    apiError(() => buildRowsQuery(items, { limit: "1001" }, limits), "limit_too_large", "limit");
    for (const l of ["0", "-1", "1e3", "abc", "99999999999999999999999"]) apiError(() => buildRowsQuery(items, { limit: l }, limits), /\d{16}/.test(l) ? "invalid_limit" : "invalid_limit", "limit");
    apiError(() => buildRowsQuery(items, { limit: ["1", "2"] }, limits), "repeated_param", "limit");
  });

  it("makes the order total with the key and signs the cursor with table and order", () => {
    const q = buildRowsQuery(items, { order: "price.desc" }, limits);
    assert.match(q.sql, /ORDER BY "price" DESC NULLS FIRST, "id" ASC NULLS LAST/);
    assert.equal(q.signature, "public.items:price.desc,id.asc");
    const nopk = buildRowsQuery(table("nopk", [{ name: "x" }], []), {}, limits);
    assert.match(nopk.sql, /ORDER BY tableoid ASC NULLS LAST, ctid ASC NULLS LAST/);
  });

  it("keyset: a row comparison when exact, else NULL-aware expansion", () => {
    const t = (name: string, desc: boolean, notNull: boolean) => ({ name, sql: quoteIdent(name), cast: "integer", desc, notNull });
    let p: Param[] = [];
    assert.equal(keysetAfter([t("a", false, true), t("b", false, true)], ["1", "2"], p), '("a", "b") > ($1::integer, $2::integer)');
    p = [];
    assert.equal(keysetAfter([t("a", true, true), t("b", true, true)], ["1", "2"], p), '("a", "b") < ($1::integer, $2::integer)');
    p = [];
    assert.equal(keysetAfter([t("a", false, false), t("id", false, true)], ["1", "2"], p), '((("a" > $1::integer OR "a" IS NULL)) OR ("a" = $1::integer AND "id" > $2::integer))');
    assert.equal(p.length, 2);
    p = [];
    // After a NULL in an ascending (NULLS LAST) column only rows with the same NULL remain.
    assert.equal(keysetAfter([t("a", false, false), t("id", false, true)], [null, "2"], p), '(("a" IS NULL AND "id" > $1::integer))');
    p = [];
    assert.equal(keysetAfter([t("a", true, false), t("id", false, true)], [null, "2"], p), '(("a" IS NOT NULL) OR ("a" IS NULL AND "id" > $1::integer))');
    assert.deepEqual(p[0], { value: "2", cast: "integer", field: "cursor", code: "invalid_cursor" });
  });

  it("rejects cursors that are malformed, tampered with, or from another order", () => {
    const sig = "public.items:id.asc";
    const good = encodeCursor(sig, ["5"]);
    assert.deepEqual(decodeCursor(good, sig, 1), ["5"]);
    apiError(() => decodeCursor("abc$", sig, 1), "invalid_cursor", "cursor");
    apiError(() => decodeCursor("abc", sig, 1), "invalid_cursor", "cursor");
    apiError(() => decodeCursor(Buffer.from("[1,2]").toString("base64url"), sig, 1), "invalid_cursor", "cursor");
    apiError(() => decodeCursor(Buffer.from('{"o":"public.items:id.asc","v":[5]}').toString("base64url"), sig, 1), "invalid_cursor", "cursor");
    apiError(() => decodeCursor(encodeCursor(sig, ["1", "2"]), sig, 1), "invalid_cursor", "cursor");
    apiError(() => decodeCursor(encodeCursor("public.items:name.asc,id.asc", ["a", "1"]), sig, 1), "invalid_cursor", "cursor");
    apiError(() => decodeCursor("A".repeat(20000), sig, 1), "invalid_cursor", "cursor");
    // A cursor's values are parameters too.
    const q = buildRowsQuery(items, { cursor: encodeCursor(sig, ["1'; DROP TABLE x; --"]) }, limits);
    assert.ok(!q.sql.includes("DROP"));
    assert.equal(q.params[0].value, "1'; DROP TABLE x; --");
  });

  it("builds a lookup by primary key; composite keys are comma-separated in key order", () => {
    const one = buildRowQuery(items, "a,b", {});
    assert.deepEqual(one.params.map((p) => p.value), ["a,b"]);
    assert.match(one.sql, /WHERE "id" = \$1::integer$/);
    const pairs = table("pairs", [{ name: "a", notNull: true }, { name: "b", type: "text", category: "S", notNull: true }, { name: "v", type: "text" }], ["a", "b"]);
    const two = buildRowQuery(pairs, '3,"x,y"', { select: "v" });
    assert.deepEqual(two.params.map((p) => [p.field, p.value]), [["a", "3"], ["b", "x,y"]]);
    assert.match(two.sql, /^SELECT "v" FROM "public"."pairs" WHERE "a" = \$1::integer AND "b" = \$2::text$/);
    apiError(() => buildRowQuery(pairs, "3", {}), "invalid_key", "key");
    apiError(() => buildRowQuery(pairs, "3", { id: "eq.1" }), "unknown_param", "id");
    apiError(() => buildRowQuery(table("nopk", [{ name: "x" }], []), "1", {}), "no_primary_key", "key");
  });
});

describe("runtime/api exec: statement names", () => {
  it("one name per SQL text per connection, and none past the cap", () => {
    const a = {};
    const b = {};
    assert.equal(statementName(a, "SELECT 1"), "cndb_0");
    assert.equal(statementName(a, "SELECT 2"), "cndb_1");
    assert.equal(statementName(a, "SELECT 1"), "cndb_0");
    assert.equal(statementName(b, "SELECT 2"), "cndb_0", "names are per connection");
    for (let i = 2; i < PREPARED_PER_CONNECTION; i++) assert.equal(statementName(a, `SELECT ${i + 1}`), `cndb_${i}`);
    assert.equal(statementName(a, "SELECT 'one too many'"), undefined, "past the cap, new texts run unnamed");
    assert.equal(statementName(a, "SELECT 1"), "cndb_0", "known texts keep their name");
  });
});
