import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { bake, BakeError, startBakedSnapshot, type BakeResult } from "../../runtime/bake";
import { findPgBinaries } from "../../runtime/pg/binaries";
import type { PgServer } from "../../runtime/pg/server";
import { bakeTempDir } from "../helpers/fixtures/bake";
import { startTestMaster, type TestMaster } from "../helpers/pg";

const ACCOUNTS = 50;

/** Moves money between accounts, one transaction per transfer, logging each transfer in another table. */
async function writer(url: string, stop: { now: boolean }): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let n = 0;
  try {
    while (!stop.now) {
      const a = (n * 7) % ACCOUNTS + 1;
      const b = (n * 13 + 5) % ACCOUNTS + 1;
      const amount = (n % 17) + 1;
      await c.query("BEGIN");
      await c.query("UPDATE accounts SET balance = balance - $2 WHERE id = $1", [a, amount]);
      await c.query("UPDATE accounts SET balance = balance + $2 WHERE id = $1", [b, amount]);
      await c.query("INSERT INTO transfers (src, dst, amount) VALUES ($1, $2, $3)", [a, b, amount]);
      await c.query("UPDATE totals SET transfers = transfers + 1");
      await c.query("COMMIT");
      n++;
    }
  } finally {
    await c.end();
  }
  return n;
}

describe("bake: consistency under concurrent writes", function () {
  this.timeout(120000);
  let m: TestMaster;
  let dir: string;
  let result: BakeResult;
  let replica: PgServer;
  let copy: pg.Client;
  let written = 0;
  let beforeBake = 0;

  before(async () => {
    m = await startTestMaster();
    await m.server.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
      INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, ${ACCOUNTS}) g;
      CREATE TABLE transfers (id bigserial PRIMARY KEY, src int NOT NULL REFERENCES accounts, dst int NOT NULL REFERENCES accounts, amount int NOT NULL);
      CREATE TABLE totals (transfers bigint NOT NULL);
      INSERT INTO totals VALUES (0);
      -- bulk that makes the dump and the checksums take a while
      CREATE TABLE filler (id int PRIMARY KEY, pad text);
      INSERT INTO filler SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 150000) g;`);
    dir = bakeTempDir();
    const stop = { now: false };
    const w = writer(m.url, stop);
    while ((await m.server.query("SELECT count(*)::int AS n FROM transfers")).rows[0].n < 100) await new Promise((r) => setTimeout(r, 20));
    beforeBake = (await m.server.query("SELECT count(*)::int AS n FROM transfers")).rows[0].n;
    process.env.CNDB_TEST_READER_PW = "r3ader-pässword";
    try {
      result = await bake({ source: m.url, out: path.join(dir, "snap"), jobs: 2, readerPasswordEnv: "CNDB_TEST_READER_PW" });
    } finally {
      stop.now = true;
      written = await w;
      delete process.env.CNDB_TEST_READER_PW;
    }
    replica = await startBakedSnapshot(await findPgBinaries(), path.join(dir, "snap"), { host: "127.0.0.1", logFile: path.join(dir, "replica.log") });
    copy = new pg.Client(replica.socketConfig("postgres"));
    await copy.connect();
  });
  after(async () => {
    await copy?.end();
    await replica?.stop();
    await m?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the writer kept writing before, during and after the snapshot", async () => {
    const baked = Number((await copy.query("SELECT count(*) AS n FROM transfers")).rows[0].n);
    assert.ok(baked >= beforeBake, `baked ${baked} transfers, ${beforeBake} existed before the bake`);
    assert.ok(written > baked, `the writer made ${written} transfers, the snapshot holds ${baked}`);
    assert.equal(Number((await m.server.query("SELECT count(*) AS n FROM transfers")).rows[0].n), written);
  });

  it("the baked data is one consistent moment: every cross-table invariant holds", async () => {
    const r = await copy.query(`
      SELECT (SELECT sum(balance) FROM accounts) AS total,
             (SELECT count(*) FROM transfers) AS n, (SELECT max(id) FROM transfers) AS max_id,
             (SELECT transfers FROM totals) AS counted,
             (SELECT count(*) FROM accounts a WHERE a.balance <> 1000
                 + coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)
                 - coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0)) AS broken`);
    const row = r.rows[0];
    assert.equal(Number(row.total), ACCOUNTS * 1000);
    assert.equal(row.counted, row.n, "totals agrees with transfers");
    assert.equal(row.max_id, row.n, "a single writer's commits: the snapshot holds exactly a prefix of them");
    assert.equal(Number(row.broken), 0, "every balance equals its transfers");
  });

  it("the manifest records that moment's row counts", async () => {
    const t = new Map(result.manifest.tables.map((x) => [x.name, x.rows]));
    assert.equal(t.get("transfers"), Number((await copy.query("SELECT count(*) AS n FROM transfers")).rows[0].n));
    assert.equal(t.get("filler"), 150000);
    assert.ok(new Date(result.manifest.source.time).getTime() <= Date.now());
  });

  it("with --reader-password-env the reader needs its password over TCP", async () => {
    const url = (pw?: string) => `postgres://reader${pw === undefined ? "" : `:${encodeURIComponent(pw)}`}@127.0.0.1:${replica.port}/postgres`;
    const ok = new pg.Client({ connectionString: url("r3ader-pässword") });
    await ok.connect();
    assert.equal((await ok.query("SELECT count(*)::int AS n FROM accounts")).rows[0].n, ACCOUNTS);
    await ok.end();
    await assert.rejects(new pg.Client({ connectionString: url("wrong") }).connect(), /password authentication failed/);
    const secret = await copy.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'reader'");
    assert.match(secret.rows[0].rolpassword, /^SCRAM-SHA-256\$4096:/);
  });

  it("a difference found by verification fails the bake and leaves nothing (a matview stale on the master)", async () => {
    await m.server.query("CREATE MATERIALIZED VIEW busiest AS SELECT count(*) AS n FROM transfers; INSERT INTO transfers (src, dst, amount) VALUES (1, 2, 0)");
    await assert.rejects(bake({ source: m.url, out: path.join(dir, "stale"), jobs: 2, includeTables: ["busiest", "transfers", "accounts"] }), (e: BakeError) => {
      assert.equal(e.code, "verify");
      assert.match(e.message, /public\.busiest: same row count but different content \(a materialized view stale on the master/);
      return true;
    });
    assert.deepEqual(readdirSync(dir).sort(), ["replica.log", "snap"]);
    assert.deepEqual(execFileSync("ps", ["-eo", "args"]).toString().split("\n").filter((l) => l.includes(".stale.bake-")), []);
  });
});
