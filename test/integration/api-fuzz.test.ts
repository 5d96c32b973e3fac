import assert from "node:assert/strict";
import net from "node:net";
import type { FastifyInstance, InjectOptions } from "fastify";
import pg from "pg";
import { Backends, buildApi } from "../../runtime/api/index";
import { startApiFixture, type ApiFixture } from "../helpers/api-fixture";

/** Deterministic PRNG (mulberry32): a failing case can be replayed from its seed and index. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}

const HOSTILE = [
  "'", '"', "' OR '1'='1", "1; DROP TABLE items; --", '"; DROP TABLE items; --', 'items"; DELETE FROM items; --', "1) OR (1=1",
  "$1", "$$", "$x$ DROP $x$", "\\", "/*", "*/", "--", "%", "_", "*", "(", ")", ",", ".", "..", "../../etc/passwd", "\u0000", "a\u0000b",
  "null", "NULL", "NaN", "Infinity", "-Infinity", "-1", "0", "-0", "1e309", "9".repeat(400), "-" + "9".repeat(60), "0x10", "1.5", "true",
  "{}", "[]", '{"a":', "{{{", "é", "🚀", "\uD800", "\uDFFF", "a".repeat(3000), "pg_sleep(10)", "SELECT pg_sleep(10)", "\r\n", "\t", " ",
  "<script>alert(1)</script>", "%s%n%x", "${jndi:ldap://127.0.0.1/x}", "__proto__", "constructor", "prototype", "toString", "select", "order",
  "limit", "cursor", "ctid", "tableoid", "pg_catalog.pg_authid", "information_schema.tables", "secret", "public.secret", "items.id", "ID",
];
const TABLES = ["items", "public.items", "pairs", "other.things", "things", "nopk", "events", "item_stats", "dup", "secret", "pg_class", "pg_catalog.pg_class"];
const COLUMNS = ["id", "name", "price", "qty", "ratio", "active", "created", "at", "tags", "meta", "doc", "mood", "blob", "code", "uid", "a", "b", "slug", "x"];
const OPS = ["eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in", "is", "not.eq", "not.in", "not.is", "between", "", "EQ", "not", "not.not.eq"];
const RAW_ESCAPES = ["%FF", "%FE%FF", "%C0%80", "%ED%A0%80", "%E0%A4%A", "%", "%%", "%G1", "%00", "%2F", "%2E%2E", "%F0%9F%9A", "%C3%28", "%E2%82"];
const METHODS = ["GET", "GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] as const;

function generator(seed: number) {
  const r = rng(seed);
  const hostile = () => r.pick(HOSTILE);
  const enc = (s: string) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return "%ED%A0%80"; // a lone surrogate cannot be encoded: send the invalid UTF-8 it would become
    }
  };
  /** A path segment or query part: encoded hostile text, raw invalid escapes, or a mix. */
  const part = (valid: readonly string[]) => {
    switch (r.int(6)) {
      case 0:
        return r.pick(RAW_ESCAPES);
      case 1:
        return enc(hostile()) + r.pick(RAW_ESCAPES);
      case 2:
      case 3:
        return enc(r.pick(valid));
      default:
        return enc(hostile());
    }
  };
  const number = () => r.pick(["0", "-1", "1", "1000", "1001", "99999999999999999999", "-99999999999", "1.5", "1e3", "0x1F", " 5", "5 ", "", "NaN"]);
  const cursor = () => {
    switch (r.int(5)) {
      case 0:
        return Buffer.from(hostile()).toString("base64url");
      case 1:
        return Buffer.from(JSON.stringify({ o: "public.items:id.asc", v: [hostile()] })).toString("base64url");
      case 2:
        return Buffer.from(JSON.stringify({ o: hostile(), v: [null, 1, {}, []] })).toString("base64url");
      case 3:
        return Buffer.from("[".repeat(5000)).toString("base64url");
      default:
        return part(HOSTILE);
    }
  };
  const query = () => {
    const n = r.int(5);
    const qs: string[] = [];
    for (let i = 0; i < n; i++) {
      switch (r.int(7)) {
        case 0:
          qs.push(`select=${Array.from({ length: 1 + r.int(3) }, () => part(COLUMNS)).join(",")}`);
          break;
        case 1:
          qs.push(`order=${part(COLUMNS)}.${r.pick(["asc", "desc", "up", "", hostile()])}`);
          break;
        case 2:
          qs.push(`limit=${enc(number())}`);
          break;
        case 3:
          qs.push(`cursor=${cursor()}`);
          break;
        case 4:
          qs.push(`${part(COLUMNS)}=${r.pick(OPS)}.${r.next() < 0.3 ? `(${part(HOSTILE)},${part(HOSTILE)})` : part(HOSTILE)}`);
          break;
        case 5:
          qs.push(`${part(HOSTILE)}=${part(HOSTILE)}`);
          break;
        default:
          qs.push(`${part(COLUMNS)}=${enc(r.pick(OPS))}.${enc(number())}`);
      }
    }
    return qs.length ? `?${qs.join("&")}` : "";
  };
  const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);
  const sqlBody = (): { payload: string; contentType: string } => {
    const json = "application/json";
    switch (r.int(9)) {
      case 0:
        return { payload: deep(1000 + r.int(30000), "[", "]"), contentType: json };
      case 1:
        return { payload: `{"sql":"SELECT $1","params":[${deep(5000 + r.int(20000), "[", "]")}]}`, contentType: json };
      case 2:
        return { payload: `{"__proto__":{"sql":"SELECT 1"},"constructor":{"prototype":{"x":1}},"sql":"SELECT 1"}`, contentType: json };
      case 3:
        return { payload: hostile(), contentType: r.pick([json, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"]) };
      case 4:
        return { payload: JSON.stringify({ sql: hostile(), params: [hostile(), r.next() * 1e308, -1e308] }), contentType: json };
      case 5:
        return {
          payload: JSON.stringify({
            sql: r.pick([
              "SELECT pg_sleep(10)",
              "INSERT INTO items(id, name) VALUES (5000, 'x')",
              "DELETE FROM items",
              "SELECT 1; DELETE FROM items",
              "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",
              "SELECT set_config('default_transaction_read_only', 'off', false)",
              "SELECT * FROM items, items AS b, items AS c",
              "SELECT $1::int",
              "COMMIT",
              "SELECT lo_import('/etc/passwd')",
              "SELECT pg_read_file('/etc/passwd')",
              "SELECT * FROM secret",
              "EXPLAIN ANALYZE DELETE FROM items",
              "SELECT repeat('x', 100000000)",
            ]),
            params: r.next() < 0.5 ? [] : [hostile()],
          }),
          contentType: json,
        };
      case 6:
        return { payload: JSON.stringify({ sql: "SELECT $1::text", params: [Array.from({ length: 10 }, hostile)] }), contentType: json };
      case 7:
        return { payload: JSON.stringify({ sql: 5, params: "x", other: true }), contentType: json };
      default:
        return { payload: `{"sql": "SELECT 1", "params": [${deep(3000, "{\"a\":", "}")}]}`.replace(/\}\]\}$/, "1}]}"), contentType: json };
    }
  };

  return (): InjectOptions => {
    const method = r.pick(METHODS);
    const headers: Record<string, string> = {};
    if (r.next() < 0.1) headers["if-none-match"] = r.pick(['"x"', "*", hostile().replace(/[^\x20-\x7e]/g, "?"), "W/"]);
    if (r.next() < 0.05) headers.authorization = `Bearer ${hostile().replace(/[^\x20-\x7e]/g, "?")}`;
    switch (r.int(8)) {
      case 0:
      case 1:
        return { method, url: `/v1/tables/${part(TABLES)}/rows${query()}`, headers };
      case 2:
        return { method, url: `/v1/tables/${part(TABLES)}/rows/${part(["1", "500", "3,x", '3,"z,comma"', "b/c"])}${query()}`, headers };
      case 3:
        return { method, url: `/v1/queries/${part(["byMood", "many", "nope"])}${r.next() < 0.5 ? `?mood=${part(HOSTILE)}&upto=${enc(number())}` : query()}`, headers };
      case 4: {
        const b = sqlBody();
        return { method: "POST", url: "/v1/sql", payload: b.payload, headers: { ...headers, "content-type": b.contentType } };
      }
      case 5:
        return { method, url: r.pick(["/v1/tables", "/v1/snapshot", "/metrics", "/healthz", "/readyz"]) + query(), headers };
      default: {
        const segs = Array.from({ length: 1 + r.int(5) }, () => part([...TABLES, "v1", "tables", "rows", "queries", "sql", ""]));
        return { method, url: `/${segs.join("/")}${query()}`, headers };
      }
    }
  };
}

describe("read API fuzz: hostile requests never get a 5xx", function () {
  this.timeout(120000);
  let f: ApiFixture;
  let backends: Backends;
  let app: FastifyInstance;
  let db: pg.Client;
  let before_: string;
  const checksum = async () =>
    (await db.query("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM (SELECT i::text FROM items i UNION ALL SELECT p::text FROM pairs p UNION ALL SELECT s::text FROM secret s) t(t)")).rows[0].h as string;

  before(async () => {
    f = await startApiFixture();
    db = new pg.Client({ connectionString: f.superUrl });
    await db.connect();
    before_ = await checksum();
    backends = new Backends([{ id: "r1", url: f.readerUrl, snapshot: f.snapshot }]);
    app = await buildApi({
      backends,
      config: {
        maxLimit: 200,
        statementTimeoutMs: 1000,
        queries: {
          byMood: { sql: "SELECT id, name FROM items WHERE mood = $1::mood AND id <= $2 ORDER BY id", params: [{ name: "mood", type: "mood" }, { name: "upto", type: "integer", default: 5 }] },
          many: { sql: "SELECT i FROM generate_series(1, 100) AS i", maxRows: 10 },
        },
        sql: { enabled: true, statementTimeoutMs: 200, maxRows: 20 },
      },
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
  });
  after(async () => {
    await app?.close();
    await backends?.close();
    await db?.end();
    await f?.stop();
  });

  function checkResponse(what: string, status: number, contentType: string, body: string, method: string) {
    assert.ok(status < 500, `${what} -> ${status} ${body.slice(0, 300)}`);
    if (status >= 400 && method !== "HEAD") {
      assert.match(contentType, /^application\/json/, `${what} -> ${status} ${contentType}`);
      const e = JSON.parse(body).error;
      assert.match(e?.code ?? "", /^[a-z_]+$/, `${what} -> ${body.slice(0, 300)}`);
      assert.ok(typeof e.message === "string" && e.message.length >= 10, `${what} -> ${body.slice(0, 300)}`);
    }
  }

  it("3000 generated requests through fastify.inject", async () => {
    const next = generator(20240601);
    const statuses = new Map<number, number>();
    const queue = Array.from({ length: 3000 }, (_, i) => [i, next()] as const);
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [i, req] = item;
        const res = await app.inject(req);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        checkResponse(`#${i} ${req.method} ${String(req.url).slice(0, 200)}`, res.statusCode, String(res.headers["content-type"] ?? ""), res.body, String(req.method));
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // The mix must exercise both success and failure paths, or the test proves little.
    assert.ok((statuses.get(200) ?? 0) > 100, JSON.stringify([...statuses]));
    assert.ok((statuses.get(400) ?? 0) > 500, JSON.stringify([...statuses]));
    assert.ok((statuses.get(404) ?? 0) > 100, JSON.stringify([...statuses]));
  });

  it("500 more over real HTTP on 127.0.0.1, and raw bytes the HTTP parser refuses", async () => {
    const port = (app.server.address() as net.AddressInfo).port;
    const next = generator(777);
    for (let i = 0; i < 500; i++) {
      const req = next();
      const res = await fetch(`http://127.0.0.1:${port}${req.url}`, {
        method: req.method,
        headers: req.headers as Record<string, string>,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : (req.payload as string | undefined),
      });
      checkResponse(`http #${i} ${req.method} ${String(req.url).slice(0, 200)}`, res.status, res.headers.get("content-type") ?? "", await res.text(), String(req.method));
    }
    const raw = (buf: Buffer) =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => s.end(buf));
        let out = "";
        s.on("data", (d) => (out += d.toString("latin1")));
        s.on("close", () => resolve(out));
        s.on("error", () => resolve(out));
      });
    for (const bytes of [[0xff, 0xfe], [0xc0, 0x80], [0x00], [0xed, 0xa0, 0x80], [0x20], [0x7f]]) {
      const out = await raw(Buffer.concat([Buffer.from("GET /v1/tables/"), Buffer.from(bytes), Buffer.from("/rows HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")]));
      const [head, body] = out.split("\r\n\r\n");
      const status = Number(head.split(" ")[1]);
      checkResponse(`raw ${bytes}`, status, /content-type: ([^\r]+)/i.exec(head)?.[1] ?? "", body ?? "", "GET");
    }
    const badHeader = await raw(Buffer.from("GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: \u0001\r\n\r\n", "latin1"));
    assert.match(badHeader, /^HTTP\/1\.1 400/);
  });

  it("the server is still up, the replica still in rotation, and no data changed", async () => {
    const port = (app.server.address() as net.AddressInfo).port;
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.ok(backends.replicas().every((r) => r.ready), "hostile input must never mark a replica down");
    const r = await fetch(`http://127.0.0.1:${port}/v1/tables/items/rows/7`);
    assert.equal(((await r.json()) as { row: { id: number } }).row.id, 7);
    assert.equal(await checksum(), before_);
  });
});
