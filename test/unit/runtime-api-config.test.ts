import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { authorize } from "../../runtime/api/auth";
import { loadConfig, parseConfig, resolveTokens, sha256Hex, TOKEN_RECHECK_MS, TokenStore } from "../../runtime/api/config";
import { ApiError, fromPgError, isConnectionError } from "../../runtime/api/errors";
import { bindNamedParams, parseSqlBody } from "../../runtime/api/queries";
import { etagFor, ifNoneMatchHits, snapshotAgeSeconds } from "../../runtime/api/snapshot-info";

describe("runtime/api config, auth, errors", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), "cndb-api-unit-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("fills defaults", () => {
    const c = parseConfig({});
    assert.equal(c.defaultLimit, 100);
    assert.equal(c.maxLimit, 1000);
    assert.equal(c.sql.enabled, false);
    assert.equal(c.cacheControl, "no-cache");
    assert.equal(resolveTokens(c), undefined);
  });

  it("names the key path of bad config", () => {
    const bad: [unknown, RegExp][] = [
      [{ sql: { statementTimeoutMs: "5s" } }, /^Error: cfg: sql\.statementTimeoutMs: .*number/],
      [{ maxLimt: 5 }, /^Error: cfg: \(root\): .*maxLimt/],
      [{ defaultLimit: 500, maxLimit: 100 }, /^Error: cfg: defaultLimit: must be <= maxLimit/],
      [{ queries: { q: { sql: "SELECT $1, $2", params: [{ name: "a" }] } } }, /^Error: cfg: queries\.q\.params: declares 1 params but sql uses up to \$2/],
      [{ queries: { q: { sql: "DELETE FROM t" } } }, /^Error: cfg: queries\.q\.sql: must be one read-only statement/],
      [{ queries: { "bad name": { sql: "SELECT 1" } } }, /^Error: cfg: queries\.bad name: query names must be identifiers/],
      [{ queries: { q: { sql: "SELECT $1", params: [{ name: "a", type: "int; drop" }] } } }, /^Error: cfg: queries\.q\.params\.0\.type: must be a PostgreSQL type name/],
      [{ auth: { tokens: [{ name: "t", routes: ["rows"] }] } }, /^Error: cfg: auth\.tokens\.0: give exactly one of sha256 or file/],
      [{ auth: { tokens: [{ name: "t", sha256: "abc", routes: ["rows"] }] } }, /^Error: cfg: auth\.tokens\.0\.sha256: must be 64 hex digits/],
      [{ auth: { tokens: [{ name: "t", sha256: "a".repeat(64), routes: ["everything"] }] } }, /^Error: cfg: auth\.tokens\.0\.routes\.0: must be \* or one of/],
      [{ auth: { tokens: [{ name: "t", sha256: "a".repeat(64), routes: ["queries/nope"] }] } }, /^Error: cfg: auth\.tokens\.0\.routes\.0: no named query nope/],
    ];
    for (const [json, re] of bad) assert.throws(() => parseConfig(json, "cfg"), re, JSON.stringify(json));
  });

  it("loads a JSON file and says which file is wrong", () => {
    const f = path.join(dir, "api.json");
    writeFileSync(f, "{ not json");
    assert.throws(() => loadConfig(f), new RegExp(`config ${f}: not valid JSON`));
    writeFileSync(f, JSON.stringify({ poolSize: 0 }));
    assert.throws(() => loadConfig(f), new RegExp(`config ${f}: poolSize: `));
    assert.throws(() => loadConfig(path.join(dir, "missing.json")), /cannot read/);
    writeFileSync(f, JSON.stringify({ maxLimit: 50, defaultLimit: 10 }));
    assert.equal(loadConfig(f).maxLimit, 50);
  });

  it("authorizes bearer tokens by hash or mounted file, per route", () => {
    const secretFile = path.join(dir, "token");
    writeFileSync(secretFile, "file-token\n");
    const c = parseConfig({
      queries: { q: { sql: "SELECT 1" } },
      auth: {
        tokens: [
          { name: "reader", sha256: sha256Hex("hash-token"), routes: ["rows", "tables", "queries/q"] },
          { name: "ops", file: secretFile, routes: ["*"] },
        ],
      },
    });
    const tokens = resolveTokens(c)!;
    assert.equal(authorize(tokens, "Bearer hash-token", "rows").name, "reader");
    assert.equal(authorize(tokens, "bearer file-token", "sql").name, "ops");
    assert.equal(authorize(tokens, "Bearer hash-token", "queries", "q").name, "reader");
    const status = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as ApiError).status;
      }
      return 200;
    };
    assert.equal(status(() => authorize(tokens, undefined, "rows")), 401);
    assert.equal(status(() => authorize(tokens, "Basic abc", "rows")), 401);
    assert.equal(status(() => authorize(tokens, "Bearer nope", "rows")), 401);
    assert.equal(status(() => authorize(tokens, "Bearer hash-token", "sql")), 403);
    assert.equal(status(() => authorize(tokens, "Bearer hash-token", "queries", "other")), 403);
    assert.throws(() => resolveTokens(parseConfig({ auth: { tokens: [{ name: "x", file: path.join(dir, "nope"), routes: ["*"] }] } })), /auth\.tokens\.0\.file: cannot read/);
  });

  it("follows a token file rotated the way a Kubernetes Secret volume does it", () => {
    // <vol>/..data -> ..v1 (atomic symlink swap on update); <vol>/token -> ..data/token
    const vol = path.join(dir, "secret-vol");
    mkdirSync(path.join(vol, "..v1"), { recursive: true });
    writeFileSync(path.join(vol, "..v1", "token"), "first-token\n");
    symlinkSync("..v1", path.join(vol, "..data"));
    symlinkSync("..data/token", path.join(vol, "token"));
    const events: Array<[boolean, string]> = [];
    const store = TokenStore.from(parseConfig({ auth: { tokens: [{ name: "ops", file: path.join(vol, "token"), routes: ["*"] }] } }), (ok, m) => events.push([ok, m]))!;
    const t0 = Date.now();
    const who = (tokens: ReturnType<TokenStore["current"]>, token: string) => tokens.get(sha256Hex(token))?.name;
    assert.equal(who(store.current(t0), "first-token"), "ops");
    const rotate = (version: string, content: string) => {
      mkdirSync(path.join(vol, version));
      writeFileSync(path.join(vol, version, "token"), content);
      symlinkSync(version, path.join(vol, "..data_tmp"));
      renameSync(path.join(vol, "..data_tmp"), path.join(vol, "..data"));
    };
    rotate("..v2", "second-token\n");
    assert.equal(who(store.current(t0 + 10), "first-token"), "ops", "not re-checked within the interval");
    const later = t0 + TOKEN_RECHECK_MS + 10;
    assert.equal(who(store.current(later), "second-token"), "ops");
    assert.equal(who(store.current(later), "first-token"), undefined, "the old token no longer works");
    assert.deepEqual(events.map((e) => e[0]), [true]);
    // a rotation caught half-way (the file gone) keeps the last good tokens, and says so
    unlinkSync(path.join(vol, "token"));
    assert.equal(who(store.current(later + TOKEN_RECHECK_MS), "second-token"), "ops");
    assert.equal(events.at(-1)![0], false);
    assert.match(events.at(-1)![1], /keeping the previous tokens: .*auth\.tokens\.0\.file: cannot read/);
    symlinkSync("..data/token", path.join(vol, "token"));
    rotate("..v3", "third-token\n");
    assert.equal(who(store.current(later + 2 * TOKEN_RECHECK_MS), "third-token"), "ops");
    assert.equal(TokenStore.from(parseConfig({})), undefined, "no auth configured: no store, every route open");
  });

  it("tells replica failures from bad requests", () => {
    const err = (code?: string, message = "x") => Object.assign(new Error(message), code ? { code } : {});
    for (const e of [err("ECONNREFUSED"), err("57P01"), err("08006"), err(undefined, "Connection terminated unexpectedly")]) assert.ok(isConnectionError(e), e.message);
    for (const e of [err("08P01"), err("22P02"), err("57014"), new ApiError(400, "x", "y")]) assert.ok(!isConnectionError(e));
    assert.equal(fromPgError(err("22P02"), { field: "id" })?.status, 400);
    assert.equal(fromPgError(err("22P02"), { field: "id" })?.field, "id");
    assert.equal(fromPgError(err("57014"), { timeoutMs: 5 })?.status, 408);
    assert.equal(fromPgError(err("25006"))?.status, 403);
    assert.equal(fromPgError(err("42601", "cannot insert multiple commands into a prepared statement"), { userSql: true })?.code, "multiple_statements");
    assert.equal(fromPgError(err("42P01")), undefined); // our own SQL failing is a 500, not the user's fault
    assert.equal(fromPgError(err("42P01"), { userSql: true })?.status, 400);
    assert.equal(fromPgError(err("XX000"), { userSql: true }), undefined);
  });

  it("validates sql bodies and named query params", () => {
    assert.deepEqual(parseSqlBody({ sql: "/* c */ -- x\n ( SELECT 1 )", params: [1, "a", null, [1, 2]] }).params, [1, "a", null, [1, 2]]);
    for (const [b, field] of [
      [null, "body"],
      [[1], "body"],
      [{ sql: "" }, "sql"],
      [{ sql: 5 }, "sql"],
      [{ sql: "UPDATE t SET x = 1" }, "sql"],
      [{ sql: "SELECT 1\u0000" }, "sql"],
      [{ sql: "SELECT 1", params: {} }, "params"],
      [{ sql: "SELECT 1", params: [{ a: 1 }] }, "params[0]"],
      [{ sql: "SELECT 1", params: [[[1]]] }, "params[0]"],
      [{ sql: "SELECT 1", extra: 1 }, "extra"],
    ] as [unknown, string][]) {
      assert.throws(() => parseSqlBody(b), (e: ApiError) => e.status === 400 && e.field === field, JSON.stringify(b));
    }
    const def = parseConfig({
      queries: { q: { sql: "SELECT $1::int, $2::text[], $3", params: [{ name: "n", type: "integer" }, { name: "tags", type: "text[]" }, { name: "opt", required: false }] } },
    }).queries.q;
    assert.deepEqual(bindNamedParams(def, { n: "1", tags: ["a,b", "c"] }).map((p) => p.value), ["1", ["a", "b", "c"], null]);
    assert.throws(() => bindNamedParams(def, { tags: "a" }), (e: ApiError) => e.code === "missing_param" && e.field === "n");
    assert.throws(() => bindNamedParams(def, { n: ["1", "2"], tags: "a" }), (e: ApiError) => e.code === "repeated_param" && e.field === "n");
    assert.throws(() => bindNamedParams(def, { n: "1", tags: "a", zzz: "1" }), (e: ApiError) => e.code === "unknown_param" && e.field === "zzz");
  });

  it("derives ETags from snapshot, method and URL and honours If-None-Match", () => {
    const a = etagFor("s1", "GET", "/v1/tables");
    assert.equal(etagFor("s1", "HEAD", "/v1/tables"), a);
    assert.notEqual(etagFor("s2", "GET", "/v1/tables"), a);
    assert.notEqual(etagFor("s1", "GET", "/v1/tables?x=1"), a);
    assert.ok(ifNoneMatchHits(a, a));
    assert.ok(ifNoneMatchHits(`"x", W/${a}`, a));
    assert.ok(ifNoneMatchHits("*", a));
    assert.ok(!ifNoneMatchHits('"x"', a));
    assert.ok(!ifNoneMatchHits(undefined, a));
    const s = { source: { time: "2024-01-01T00:00:00Z" }, createdAt: "2024-01-01T00:00:10Z" } as Parameters<typeof snapshotAgeSeconds>[0];
    assert.equal(snapshotAgeSeconds(s, Date.parse("2024-01-01T00:01:00Z")), 60);
  });
});
