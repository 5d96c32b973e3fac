import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { Backends, buildApi, type ApiConfigInput } from "../../runtime/api/index";
import { sha256Hex } from "../../runtime/api/config";
import { startApiFixture, type ApiFixture } from "../helpers/api-fixture";

interface Res {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, string | string[] | number | undefined>;
}

async function call(app: FastifyInstance, url: string, opts: { method?: "GET" | "POST" | "HEAD"; headers?: Record<string, string>; payload?: unknown } = {}): Promise<Res> {
  const r = await app.inject({ method: opts.method ?? "GET", url, headers: opts.headers, payload: opts.payload as string | object | undefined });
  let body: unknown = r.body;
  if (String(r.headers["content-type"] ?? "").startsWith("application/json") && r.body) body = JSON.parse(r.body);
  return { status: r.statusCode, body, headers: r.headers };
}

const CONFIG: ApiConfigInput = {
  maxLimit: 500,
  cacheControl: "public, max-age=30",
  queries: {
    byMood: {
      sql: "SELECT id, name FROM items WHERE mood = $1::mood AND id <= $2 ORDER BY id",
      params: [{ name: "mood", type: "mood" }, { name: "upto", type: "integer", default: 1000 }],
    },
    priced: { sql: "SELECT id FROM items WHERE price = ANY($1::numeric[]) ORDER BY id", params: [{ name: "prices", type: "numeric[]" }] },
    many: { sql: "SELECT i FROM generate_series(1, 100) AS i", maxRows: 10 },
    nap: { sql: "SELECT pg_sleep(0.3) AS nap" },
  },
  sql: { enabled: true, statementTimeoutMs: 300, maxRows: 50 },
};

describe("read API: every endpoint against real PostgreSQL", function () {
  this.timeout(60000);
  let f: ApiFixture;
  let backends: Backends;
  let app: FastifyInstance;
  let db: pg.Client;
  const logLines: string[] = [];

  before(async () => {
    f = await startApiFixture();
    db = new pg.Client({ connectionString: f.superUrl });
    await db.connect();
    backends = new Backends([{ id: "r1", url: f.readerUrl, snapshot: f.snapshot }]);
    const stream = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(...String(chunk).split("\n").filter(Boolean));
        cb();
      },
    });
    app = await buildApi({ backends, config: CONFIG, logger: { level: "info", stream } });
  });
  after(async () => {
    await app?.close();
    await backends?.close();
    await db?.end();
    await f?.stop();
  });

  const ids = async (where: string, order = "id") => (await db.query<{ id: number }>(`SELECT id FROM items WHERE ${where} ORDER BY ${order}`)).rows.map((r) => r.id);

  it("health, readiness and the snapshot", async () => {
    assert.deepEqual((await call(app, "/healthz")).body, { status: "ok" });
    const ready = await call(app, "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(ready.body.snapshot, f.snapshot.id);
    const s = await call(app, "/v1/snapshot");
    assert.equal(s.status, 200);
    assert.equal(s.body.id, f.snapshot.id);
    assert.equal(typeof s.body.ageSeconds, "number");
    assert.equal(s.headers["x-snapshot-id"], f.snapshot.id);
    assert.equal(s.headers["x-snapshot-created-at"], f.snapshot.createdAt);
  });

  it("is not ready while a named query cannot run on the snapshot, and says which and why", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const queries = {
      fine: { sql: "SELECT id FROM items WHERE id = $1", params: [{ name: "id", type: "integer" }] },
      typo: { sql: "SELECT nme FROM items" },
      gone: { sql: "SELECT * FROM no_such_table" },
      sneaky: { sql: "SELECT 1; DELETE FROM items" },
    };
    const bad = await buildApi({ backends, config: { queries }, logger: { level: "info", stream } });
    try {
      const before = await ids("true");
      const r = await call(bad, "/readyz");
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, "bad_named_query");
      assert.match(r.body.error.message, /typo: column "nme" does not exist \(SQLSTATE 42703\)/);
      assert.match(r.body.error.message, /gone: relation "no_such_table" does not exist/);
      assert.match(r.body.error.message, /sneaky: cannot insert multiple commands/);
      assert.doesNotMatch(r.body.error.message, /fine/);
      assert.ok(lines.some((l) => l.includes('"level":50') && l.includes("typo: column")), "the reason is in the log, not only the probe's body");
      assert.deepEqual(await ids("true"), before, "checking ran nothing");
      const { value } = await backends.run((c) => c.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'cndb_check'"));
      assert.equal(value.rows[0].n, 0, "no check statement left on the pooled session");
    } finally {
      await bad.close();
    }
    assert.equal((await call(app, "/readyz")).status, 200, "the API with valid queries is ready");
  });

  it("lists readable tables with columns, types, primary keys and row counts", async () => {
    const r = await call(app, "/v1/tables");
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-snapshot-id"], f.snapshot.id);
    assert.ok(r.headers.etag);
    assert.equal(r.headers["cache-control"], "public, max-age=30");
    const names = r.body.tables.map((t: { schema: string; name: string }) => `${t.schema}.${t.name}`);
    assert.ok(!names.includes("public.secret"), "a table the role may not read is hidden");
    for (const n of ["public.items", "public.pairs", "other.things", "public.nopk", "public.events", "public.item_stats"]) assert.ok(names.includes(n), n);
    const items = r.body.tables.find((t: { name: string }) => t.name === "items");
    assert.equal(items.rows, 1000);
    assert.deepEqual(items.primaryKey, ["id"]);
    assert.deepEqual(items.columns.slice(0, 3), [
      { name: "id", type: "integer", nullable: false },
      { name: "name", type: "text", nullable: false },
      { name: "price", type: "numeric(10,2)", nullable: true },
    ]);
    assert.deepEqual(r.body.tables.find((t: { name: string }) => t.name === "pairs").primaryKey, ["a", "b"]);
  });

  it("every operator selects what the same SQL selects", async () => {
    const cases: [string, string][] = [
      ["id=eq.5", "id = 5"],
      ["id=neq.5", "id <> 5"],
      ["id=lt.5", "id < 5"],
      ["id=lte.5", "id <= 5"],
      ["id=gt.995", "id > 995"],
      ["id=gte.995", "id >= 995"],
      ["name=like.item 1*", "name LIKE 'item 1%'"],
      ["name=like.item%201%25", "name LIKE 'item 1%'"],
      ["name=ilike.ITEM 4_", "name ILIKE 'ITEM 4_'"],
      ["id=in.(1,2,3,999)", "id IN (1, 2, 3, 999)"],
      ["code=in.(c1,\"c2\",c3)", "code IN ('c1', 'c2', 'c3')"],
      ["price=is.null", "price IS NULL"],
      ["price=is.notnull&id=lt.20", "price IS NOT NULL AND id < 20"],
      ["active=is.true", "active IS TRUE"],
      ["active=is.false", "active IS FALSE"],
      ["active=is.unknown", "active IS UNKNOWN"],
      ["id=not.in.(1,2)&id=lt.10", "id NOT IN (1, 2) AND id < 10"],
      ["id=gt.10&id=lt.20", "id > 10 AND id < 20"],
      ["price=gte.15&mood=eq.happy", "price >= 15 AND mood = 'happy'"],
      ["created=lt.2024-01-05", "created < '2024-01-05'"],
      ["at=gte.2024-02-11 16:00:00.123456%2B00", "at >= '2024-02-11 16:00:00.123456+00'"],
      ["meta=eq.{\"n\": 7}", "meta = '{\"n\": 7}'"],
      ["tags=eq.{t1,x}&id=lt.30", "tags = '{t1,x}' AND id < 30"],
      ["uid=eq.c4ca4238-a0b9-2382-0dcc-509a6f75849b", "uid = 'c4ca4238-a0b9-2382-0dcc-509a6f75849b'"],
      ["ratio=eq.NaN", "ratio = 'NaN'"],
      ["blob=eq.\\xc4ca4238a0b923820dcc509a6f75849b", "id = 1"],
      ["qty=gt.9990000000000", "qty > 9990000000000"],
      ["doc=like.*a*&id=lt.4", "id < 4"],
      ["Weird%20%22Col%22=eq.w7", "id = 7"],
      ["name=eq.quote's \"and\", comma ü 🚀", "id = 500"],
    ];
    for (const [qs, where] of cases) {
      const r = await call(app, `/v1/tables/items/rows?select=id&limit=500&${qs.replace(/ /g, "%20").replace(/🚀/g, encodeURIComponent("🚀")).replace(/ü/g, encodeURIComponent("ü"))}`);
      assert.equal(r.status, 200, `${qs}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.rows.map((x: { id: number }) => x.id), (await ids(where)).slice(0, 500), qs);
    }
  });

  it("renders values losslessly: bigint/numeric as strings, PostgreSQL's text for time and bytea", async () => {
    const r = await call(app, "/v1/tables/items/rows/1");
    assert.equal(r.status, 200);
    const row = r.body.row;
    assert.equal(row.qty, "10000000000");
    assert.equal(row.price, "1.50");
    assert.equal(row.ratio, "NaN");
    assert.equal(row.created, "2024-01-02");
    assert.equal(row.at, "2024-01-01 01:00:00.123456+00");
    assert.equal(row.blob, "\\xc4ca4238a0b923820dcc509a6f75849b");
    assert.deepEqual(row.tags, ["t1", "x"]);
    assert.deepEqual(row.meta, { n: 1 });
    assert.equal(row.mood, "ok");
    assert.equal(row['Weird "Col"'], "w1");
    assert.equal((await call(app, "/v1/tables/items/rows/2")).body.row.ratio, "Infinity");
    assert.equal((await call(app, "/v1/tables/items/rows/8")).body.row.ratio, 2);
  });

  it("select and order, with NULLs and duplicates", async () => {
    const r = await call(app, "/v1/tables/items/rows?select=name,id&order=price.desc,name.asc&limit=20");
    assert.deepEqual(Object.keys(r.body.rows[0]), ["name", "id"]);
    const want = await db.query("SELECT id FROM items ORDER BY price DESC NULLS FIRST, name, id LIMIT 20");
    assert.deepEqual(r.body.rows.map((x: { id: number }) => x.id), want.rows.map((x) => x.id));
    const star = await call(app, "/v1/tables/items/rows?select=*&limit=1");
    assert.equal(Object.keys(star.body.rows[0]).length, 16);
  });

  /** Follows cursors to the end; returns every row in page order. */
  async function pageAll(url: string): Promise<Record<string, unknown>[]> {
    const all: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10000; pages++) {
      const r: Res = await call(app, `${url}${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      all.push(...r.body.rows);
      cursor = r.body.cursor;
      if (!cursor) return all;
      assert.ok(r.body.rows.length > 0);
    }
    throw new Error("pagination did not end");
  }

  it("pages through whole tables: every row exactly once, in order, whatever the order column holds", async () => {
    const plans: [string, string, string][] = [
      ["items", "limit=37", "SELECT id FROM items ORDER BY id"],
      ["items", "limit=41&order=price.desc", "SELECT id FROM items ORDER BY price DESC NULLS FIRST, id"],
      ["items", "limit=41&order=price.asc", "SELECT id FROM items ORDER BY price ASC NULLS LAST, id"],
      ["items", "limit=29&order=active.desc,name.asc", "SELECT id FROM items ORDER BY active DESC NULLS FIRST, name, id"],
      ["items", "limit=53&order=ratio.desc", "SELECT id FROM items ORDER BY ratio DESC NULLS FIRST, id"],
      ["items", "limit=50&order=id.desc", "SELECT id FROM items ORDER BY id DESC"],
      ["items", "limit=13&order=mood.asc,at.desc&price=is.notnull&id=lt.400", "SELECT id FROM items WHERE price IS NOT NULL AND id < 400 ORDER BY mood, at DESC, id"],
    ];
    for (const [t, qs, sql] of plans) {
      const rows = await pageAll(`/v1/tables/${t}/rows?select=id&${qs}`);
      const want = (await db.query(sql)).rows.map((r) => r.id);
      assert.deepEqual(rows.map((r) => r.id), want, qs);
    }
    const pairs = await pageAll("/v1/tables/pairs/rows?limit=7&order=v.desc");
    assert.deepEqual(pairs.map((r) => `${r.a}/${r.b}`), (await db.query("SELECT a, b FROM pairs ORDER BY v DESC, a, b")).rows.map((r) => `${r.a}/${r.b}`));
    // Without a primary key, (tableoid, ctid) keeps the order total even among identical rows.
    const nopk = await pageAll("/v1/tables/nopk/rows?limit=4&order=x.asc");
    assert.equal(nopk.length, 30);
    assert.deepEqual(nopk.map((r) => r.x), (await db.query("SELECT x FROM nopk ORDER BY x")).rows.map((r) => r.x));
    const events = await pageAll("/v1/tables/events/rows?limit=17&select=id");
    assert.deepEqual(events.map((r) => r.id), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal((await pageAll("/v1/tables/item_stats/rows?limit=1")).length, 3);
    assert.equal((await pageAll("/v1/tables/other.things/rows?limit=2")).length, 6);
  });

  it("refuses a cursor from another order and a forged cursor value, naming the cursor", async () => {
    const first = await call(app, "/v1/tables/items/rows?select=id&limit=2&order=price.desc");
    const other = await call(app, `/v1/tables/items/rows?limit=2&cursor=${first.body.cursor}`);
    assert.equal(other.status, 400);
    assert.equal(other.body.error.code, "invalid_cursor");
    const forged = Buffer.from(JSON.stringify({ o: "public.items:id.asc", v: ["not a number"] })).toString("base64url");
    const bad = await call(app, `/v1/tables/items/rows?cursor=${forged}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "cursor");
    assert.equal(bad.body.error.code, "invalid_cursor");
  });

  it("one row by primary key: plain, composite, escaped, missing", async () => {
    assert.equal((await call(app, "/v1/tables/items/rows/500?select=name")).body.row.name, "quote's \"and\", comma ü 🚀");
    assert.deepEqual((await call(app, "/v1/tables/public.pairs/rows/3,%22z,comma%22")).body.row, { a: 3, b: "z,comma", v: "3/z,comma" });
    assert.equal((await call(app, "/v1/tables/other.things/rows/b%2Fc")).body.row.n, 2);
    assert.equal((await call(app, "/v1/tables/things/rows/d,e")).body.row.n, 3);
    assert.equal((await call(app, `/v1/tables/things/rows/${encodeURIComponent("ü")}`)).body.row.n, 4);
    assert.equal((await call(app, "/v1/tables/things/rows/%2541")).body.row.n, 6);
    assert.equal((await call(app, "/v1/tables/events/rows/3,2024-06-07")).body.row.what, "e3");
    const missing = await call(app, "/v1/tables/items/rows/5000");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, "row_not_found");
    assert.equal(missing.headers["x-snapshot-id"], f.snapshot.id);
    const bad = await call(app, "/v1/tables/pairs/rows/x,y");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "a");
  });

  it("explains bad requests with the right status, code and field", async () => {
    const cases: [string, number, string, string?][] = [
      ["/v1/tables/nope/rows", 404, "unknown_table", "table"],
      ["/v1/tables/secret/rows", 404, "unknown_table", "table"],
      ["/v1/tables/dup/rows", 400, "ambiguous_table", "table"],
      ["/v1/tables/items/rows?nope=eq.1", 400, "unknown_column", "nope"],
      ["/v1/tables/items/rows?id=eq.abc", 400, "invalid_value", "id"],
      ["/v1/tables/items/rows?id=gt.1&created=lt.zzz", 400, "invalid_value", "created"],
      ["/v1/tables/items/rows?id=in.(1,x)", 400, "invalid_value", "id"],
      ["/v1/tables/items/rows?id=eq.99999999999", 400, "invalid_value", "id"],
      ["/v1/tables/items/rows?id=foo.1", 400, "unknown_operator", "id"],
      ["/v1/tables/items/rows?limit=501", 400, "limit_too_large", "limit"],
      ["/v1/tables/items/rows?cursor=!!", 400, "invalid_cursor", "cursor"],
      ["/v1/tables/items/rows?doc=eq.{}", 400, "unsupported_operator", "doc"],
      ["/v1/tables/nopk/rows/1", 400, "no_primary_key", "key"],
      ["/v1/queries/nope", 404, "unknown_query", "name"],
      ["/v1/nope", 404, "not_found"],
      ["/v1/tables/%E0%A4%A/rows", 400, "bad_url"],
    ];
    for (const [url, status, code, field] of cases) {
      const r = await call(app, url);
      assert.equal(r.status, status, `${url}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, url);
      assert.equal(r.body.error.field, field, url);
      assert.ok(r.body.error.message.length > 10, url);
    }
  });

  it("named queries: params, defaults, lists, row cap, bad values", async () => {
    const r = await call(app, "/v1/queries/byMood?mood=ok&upto=10");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.rows.map((x: { id: number }) => x.id), await ids("mood = 'ok' AND id <= 10"));
    assert.equal(r.body.truncated, false);
    assert.ok(r.headers.etag);
    assert.equal((await call(app, "/v1/queries/byMood?mood=sad")).body.rows.length, (await ids("mood = 'sad'")).length);
    assert.deepEqual((await call(app, "/v1/queries/priced?prices=1.5,3&prices=4.5")).body.rows.map((x: { id: number }) => x.id), await ids("price IN (1.5, 3, 4.5)"));
    const capped = await call(app, "/v1/queries/many");
    assert.equal(capped.body.rows.length, 10);
    assert.equal(capped.body.truncated, true);
    const bad = await call(app, "/v1/queries/byMood?mood=grumpy");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "mood");
    const badInt = await call(app, "/v1/queries/byMood?mood=ok&upto=ten");
    assert.equal(badInt.body.error.field, "upto");
    assert.equal((await call(app, "/v1/queries/byMood")).body.error.code, "missing_param");
    assert.equal((await call(app, "/v1/queries/byMood?mood=ok&x=1")).body.error.code, "unknown_param");
  });

  it("POST /v1/sql: one read-only statement, params, row cap, statement timeout", async () => {
    const ok = await call(app, "/v1/sql", { method: "POST", payload: { sql: "SELECT id, name FROM items WHERE id = ANY($1::int[]) ORDER BY id", params: [[3, 4]] } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.rows, [{ id: 3, name: "item 3" }, { id: 4, name: "item 4" }]);
    assert.deepEqual(ok.body.fields, ["id", "name"]);
    assert.equal(ok.headers["x-snapshot-id"], f.snapshot.id);
    assert.equal(ok.headers["cache-control"], "no-store");
    const capped = await call(app, "/v1/sql", { method: "POST", payload: { sql: "SELECT * FROM items" } });
    assert.equal(capped.body.rows.length, 50);
    assert.equal(capped.body.truncated, true);
    const cases: [unknown, number, string][] = [
      [{ sql: "SELECT pg_sleep(3)" }, 408, "statement_timeout"],
      [{ sql: "SELECT 1; SELECT 2" }, 400, "multiple_statements"],
      [{ sql: "SELEC 1" }, 400, "not_a_query"],
      [{ sql: "SELECT FROM WHERE" }, 400, "sql_error"],
      [{ sql: "SELECT * FROM secret" }, 403, "permission_denied"],
      [{ sql: "SELECT $1::int", params: ["x"] }, 400, "invalid_value"],
      // Fails after some rows were already sent: the capped query must still resync the connection.
      [{ sql: "SELECT 1 / (3 - i) FROM generate_series(1, 10) AS i" }, 400, "invalid_value"],
      [{ sql: "SELECT $1::int", params: [] }, 400, "bad_params"],
      [{ sql: "WITH d AS (DELETE FROM items RETURNING 1) SELECT * FROM d" }, 403, "read_only"],
    ];
    for (const [payload, status, code] of cases) {
      const r = await call(app, "/v1/sql", { method: "POST", payload });
      assert.equal(r.status, status, `${JSON.stringify(payload)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, JSON.stringify(payload));
    }
    // The timeout was SET LOCAL: the pooled session's own timeout is untouched.
    const after = await call(app, "/v1/sql", { method: "POST", payload: { sql: "SHOW statement_timeout" } });
    assert.equal(after.body.rows[0].statement_timeout, "300ms");
    const plain = await call(app, "/v1/queries/many");
    assert.equal(plain.status, 200);
  });

  it("ETag and If-None-Match: 304 without a body, labelled with the snapshot", async () => {
    for (const url of ["/v1/tables", "/v1/tables/items/rows?id=lt.5", "/v1/tables/items/rows/7", "/v1/queries/byMood?mood=ok"]) {
      const first = await call(app, url);
      assert.equal(first.status, 200);
      const etag = String(first.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
      const again = await call(app, url, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304, url);
      assert.equal(again.body, "");
      assert.equal(again.headers.etag, etag);
      assert.equal(again.headers["x-snapshot-id"], f.snapshot.id);
      assert.equal(again.headers["cache-control"], "public, max-age=30");
      assert.equal((await call(app, url, { headers: { "if-none-match": '"other"' } })).status, 200);
      assert.equal((await call(app, url, { method: "HEAD", headers: { "if-none-match": etag } })).status, 304);
    }
    const a = await call(app, "/v1/tables/items/rows?id=lt.5");
    const b = await call(app, "/v1/tables/items/rows?id=lt.6");
    assert.notEqual(a.headers.etag, b.headers.etag);
  });

  it("metrics: request counts and latency by route, pool use, snapshot age", async () => {
    const m = await call(app, "/metrics");
    assert.equal(m.status, 200);
    const text = String(m.body);
    assert.match(text, /cndb_api_requests_total\{route="\/v1\/tables\/:table\/rows",method="GET",status="200"\} \d+/);
    assert.match(text, /cndb_api_request_duration_seconds_bucket\{le="0\.005",route="\/v1\/tables\/:table\/rows",method="GET"\} \d+/);
    assert.match(text, /cndb_api_pool_connections\{replica="r1",state="total"\} [1-9]/);
    assert.match(text, new RegExp(`cndb_api_snapshot_age_seconds\\{snapshot="${f.snapshot.id}"\\} \\d+`));
    assert.match(text, /cndb_api_replica_ready\{replica="r1",snapshot="[^"]+"\} 1/);
    assert.match(text, /cndb_api_requests_total\{route="\(unmatched\)",method="GET",status="404"\}/);
  });

  it("logs one line per request without query strings, key values or params", async () => {
    logLines.length = 0;
    await call(app, "/v1/tables/items/rows?name=eq.sekrit-filter-value");
    await call(app, "/v1/tables/things/rows/sekrit-key");
    await call(app, "/v1/queries/byMood?mood=sekrit-param");
    await call(app, "/v1/sql", { method: "POST", payload: { sql: "SELECT $1::text AS x", params: ["sekrit-sql-param"] } });
    assert.equal(logLines.length, 4, logLines.join("\n"));
    for (const l of logLines) {
      assert.ok(!/sekrit/.test(l), l);
      const j = JSON.parse(l);
      assert.equal(j.msg, "request");
      assert.ok(j.route && j.status && typeof j.ms === "number", l);
    }
    assert.equal(JSON.parse(logLines[2]).error, "invalid_value");
  });

  describe("with bearer tokens", () => {
    let authApp: FastifyInstance;
    const authLog: string[] = [];
    before(async () => {
      authApp = await buildApi({
        backends,
        logger: { level: "info", stream: new Writable({ write: (c, _e, cb) => (authLog.push(String(c)), cb()) }) },
        config: {
          ...CONFIG,
          auth: {
            tokens: [
              { name: "app", sha256: sha256Hex("app-token"), routes: ["rows", "tables", "queries/byMood"] },
              { name: "ops", sha256: sha256Hex("ops-token"), routes: ["*"] },
            ],
          },
        },
      });
    });
    after(async () => authApp?.close());

    it("401 without or with an unknown token, 403 outside the token's routes, health open", async () => {
      const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
      assert.equal((await call(authApp, "/healthz")).status, 200);
      assert.equal((await call(authApp, "/readyz")).status, 200);
      const none = await call(authApp, "/v1/tables");
      assert.equal(none.status, 401);
      assert.equal((await call(authApp, "/v1/tables/items/rows/1", { method: "HEAD" })).status, 401);
      assert.equal(none.body.error.code, "unauthorized");
      assert.match(String(none.headers["www-authenticate"]), /^Bearer/);
      assert.equal((await call(authApp, "/v1/tables", { headers: bearer("wrong") })).status, 401);
      assert.equal((await call(authApp, "/v1/tables", { headers: bearer("app-token") })).status, 200);
      assert.equal((await call(authApp, "/v1/tables/items/rows/1", { headers: bearer("app-token") })).status, 200);
      assert.equal((await call(authApp, "/v1/queries/byMood?mood=ok", { headers: bearer("app-token") })).status, 200);
      for (const [url, method] of [["/v1/queries/many", "GET"], ["/v1/snapshot", "GET"], ["/metrics", "GET"], ["/v1/sql", "POST"]] as const) {
        const r = await call(authApp, url, { method, headers: bearer("app-token"), payload: method === "POST" ? { sql: "SELECT 1" } : undefined });
        assert.equal(r.status, 403, url);
        assert.equal(r.body.error.code, "forbidden");
        assert.match(r.body.error.message, /token app may not use/);
      }
      assert.equal((await call(authApp, "/metrics", { headers: bearer("ops-token") })).status, 200);
      assert.equal((await call(authApp, "/v1/sql", { method: "POST", headers: bearer("ops-token"), payload: { sql: "SELECT 1" } })).status, 200);
      // The log names the token, never shows it.
      assert.ok(authLog.some((l) => JSON.parse(l).token === "ops"));
      assert.ok(!authLog.some((l) => /app-token|ops-token|Bearer/.test(l)));
    });
  });

  it("POST /v1/sql is off unless enabled; the config's statement timeout holds for reads and named queries", async () => {
    const off = await buildApi({ backends, config: { statementTimeoutMs: 200, queries: { slow: { sql: "SELECT pg_sleep(2)" } } } });
    try {
      const r = await call(off, "/v1/sql", { method: "POST", payload: { sql: "SELECT 1" } });
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, "sql_disabled");
      const slow = await call(off, "/v1/queries/slow");
      assert.equal(slow.status, 408);
      assert.equal(slow.body.error.code, "statement_timeout");
      assert.match(slow.body.error.message, /200 ms/);
    } finally {
      await off.close();
    }
    // The other API on the same pool (same connections) still has its own (default 5 s) timeout.
    const r = await call(app, "/v1/queries/nap");
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  it("row reads run as statements prepared once per connection, bounded per connection", async () => {
    const one = new Backends([{ id: "r1", url: f.readerUrl, snapshot: f.snapshot }], { poolSize: 1 });
    const api = await buildApi({ backends: one });
    try {
      for (const id of [1, 2, 1]) assert.equal((await call(api, `/v1/tables/items/rows/${id}`)).body.row.id, id);
      for (let i = 0; i < 2; i++) assert.equal((await call(api, "/v1/tables/items/rows?limit=2&order=id.desc")).body.rows.length, 2);
      const bad = await call(api, "/v1/tables/items/rows/not-a-number");
      assert.equal(bad.status, 400, "a value the prepared statement refuses is still the caller's error");
      assert.equal((await call(api, "/v1/tables/items/rows/3")).body.row.id, 3, "and the connection goes on serving");
      const { value } = await one.run((c) => c.query<{ name: string; statement: string }>("SELECT name, statement FROM pg_prepared_statements ORDER BY name"));
      const mine = value.rows.filter((r) => r.name.startsWith("cndb_"));
      assert.equal(mine.length, 2, JSON.stringify(value.rows));
      assert.ok(mine.some((r) => /WHERE/.test(r.statement)) && mine.some((r) => /ORDER BY/.test(r.statement) && /LIMIT/.test(r.statement)));
    } finally {
      await api.close();
      await one.close();
    }
  });
});
