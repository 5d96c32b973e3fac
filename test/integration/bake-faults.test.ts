import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { freePort } from "../../runtime/pg/ports";
import { chownTree, pgRunAs } from "../../runtime/pg/run-as";
import { bakeTempDir, withDatabase } from "../helpers/fixtures/bake";
import { startTestMaster, type TestMaster } from "../helpers/pg";

const ROOT = path.resolve(__dirname, "../..");

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cndb bake`; with `killOn`, sends `signal` once a stderr line matches it. */
function cndbBake(args: string[], opts: { env?: NodeJS.ProcessEnv; killOn?: RegExp; signal?: NodeJS.Signals } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-r", "@swc-node/register", "runtime/cli.ts", "bake", ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let killed = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr += d;
      if (opts.killOn && !killed && opts.killOn.test(stderr)) {
        killed = true;
        child.kill(opts.signal ?? "SIGINT");
      }
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Processes still running that mention `dir` (a postgres, pg_dump or pg_restore of the bake). */
function processesUnder(dir: string): string[] {
  return execFileSync("ps", ["-eo", "pid,args"]).toString().split("\n").filter((l) => l.includes(dir) && !l.includes("ps -eo"));
}

describe("bake: bad input and faults (cndb bake)", function () {
  this.timeout(180000);
  let m: TestMaster;
  let dir: string;
  let out: string;
  before(async () => {
    m = await startTestMaster();
    await m.server.query(`CREATE TABLE items (id int PRIMARY KEY, pad text);
      INSERT INTO items SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 60000) g;
      CREATE TABLE small (x int); INSERT INTO small VALUES (1), (2)`);
    dir = bakeTempDir();
    out = path.join(dir, "snap");
  });
  after(async () => {
    await m?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const onlyOut = () => readdirSync(dir).filter((f) => !["fake-bin", "tiny", "not-a-snapshot"].includes(f));

  describe("fails with a clear error, exit 1 and nothing left behind", () => {
    it("an unreachable master", async () => {
      const r = await cndbBake(["--source", `postgres://postgres:pw@127.0.0.1:${await freePort()}/postgres`, "--out", out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cndb: cannot reach the master at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
      assert.deepEqual(onlyOut(), []);
    });

    it("wrong credentials, without printing the password", async () => {
      const r = await cndbBake(["--source", m.url.replace(m.password, "wrong-pw-1234"), "--out", out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refused user "postgres": password authentication failed/);
      assert.ok(!r.stderr.includes("wrong-pw-1234"));
      assert.deepEqual(onlyOut(), []);
    });

    it("a database that does not exist", async () => {
      const r = await cndbBake(["--source", withDatabase(m.url, "nosuch"), "--out", out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /database "nosuch" does not exist on the master at 127\.0\.0\.1:\d+/);
      assert.deepEqual(onlyOut(), []);
    });

    it("an include pattern matching nothing", async () => {
      const r = await cndbBake(["--source", m.url, "--out", out, "--include-table", "public.nope*"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--include-table "public\.nope\*" matches no table/);
      assert.deepEqual(onlyOut(), []);
    });

    it("bad option values", async () => {
      let r = await cndbBake(["--source", "mysql://x@y/z", "--out", out]);
      assert.match(r.stderr, /--source: scheme mysql is not supported/);
      r = await cndbBake(["--source", m.url, "--out", out, "--jobs", "0"]);
      assert.match(r.stderr, /option '--jobs <n>' argument '0' is invalid\. expected a whole number from 1 to 64/);
      r = await cndbBake(["--source", m.url, "--out", out, "--reader-password-env", "CNDB_NOT_SET_ANYWHERE"]);
      assert.match(r.stderr, /--reader-password-env CNDB_NOT_SET_ANYWHERE: that environment variable is not set/);
      const other = path.join(dir, "not-a-snapshot");
      mkdirSync(other, { recursive: true });
      writeFileSync(path.join(other, "precious"), "x");
      r = await cndbBake(["--source", m.url, "--out", other]);
      assert.match(r.stderr, /--out .* exists and is not a snapshot \(no snapshot\.json\); refusing to replace it/);
      assert.ok(readdirSync(other).includes("precious"));
      assert.equal(r.code, 1);
      assert.deepEqual(onlyOut(), []);
    });

    it("an --out the PostgreSQL account cannot reach", async () => {
      const priv = path.join(dir, "not-a-snapshot", "private");
      mkdirSync(priv, { recursive: true, mode: 0o700 }); // owned by root: the postgres account cannot enter it
      const r = await cndbBake(["--source", m.url, "--out", path.join(priv, "snap")]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--out .*private\/snap: the PostgreSQL account \w+ \(uid \d+\) cannot reach .*private; choose a directory it can enter/);
      assert.deepEqual(readdirSync(priv), []);
    });

    it("a pg_dump older than the server, saying what to install", async () => {
      const bin = await findPgBinaries();
      const fake = path.join(dir, "fake-bin");
      mkdirSync(fake);
      for (const p of ["initdb", "postgres", "pg_ctl", "pg_restore"]) symlinkSync(bin.path(p), path.join(fake, p));
      writeFileSync(path.join(fake, "pg_dump"), '#!/bin/sh\necho "pg_dump (PostgreSQL) 14.9"\n');
      chmodSync(path.join(fake, "pg_dump"), 0o755);
      const r = await cndbBake(["--source", m.url, "--out", out], { env: { CNDB_PG_BIN: fake } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /pg_dump 14\.9 is older than the master \(PostgreSQL 15[.\d]*.*\): install PostgreSQL 15 or newer \(Debian\/Ubuntu: apt-get install postgresql-15\)/);
      assert.deepEqual(onlyOut(), []);
    });

    it("missing PostgreSQL binaries, saying how to install them", async () => {
      const r = await cndbBake(["--source", m.url, "--out", out], { env: { CNDB_PG_BIN: path.join(dir, "no-such-dir") } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /PostgreSQL binaries not found .*apt-get install postgresql/);
      assert.deepEqual(onlyOut(), []);
    });

    it("no space left on device", async function () {
      const tiny = path.join(dir, "tiny");
      mkdirSync(tiny);
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=20m,mode=0755", "tmpfs", tiny], { stdio: "pipe" });
      } catch (e) {
        this.skip(); // needs root and mount rights; the machine this was written on has them
      }
      try {
        chownTree(tiny, pgRunAs());
        const r = await cndbBake(["--source", m.url, "--out", path.join(tiny, "snap")]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /cndb: no space left on device while .*: free some space or choose --out on a larger filesystem/);
        assert.deepEqual(readdirSync(tiny), []);
        assert.deepEqual(processesUnder(tiny), []);
      } finally {
        execFileSync("umount", [tiny]);
        rmSync(tiny, { recursive: true, force: true });
      }
    });
  });

  describe("an existing good snapshot", () => {
    let first: { id: string; json: string };

    it("a successful bake prints progress and a summary, --json the result", async () => {
      const r = await cndbBake(["--source", m.url, "--out", out, "--jobs", "2", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const result = JSON.parse(r.stdout);
      assert.equal(result.dir, out);
      assert.deepEqual(result.manifest.tables.map((t: { name: string }) => t.name), ["items", "small"]);
      for (const phase of ["connect", "dump", "restore", "freeze", "verify"]) assert.match(r.stderr, new RegExp(`\\] ${phase} done in \\d+\\.\\ds`));
      assert.match(r.stderr, /\] dump started: 0\/2 tables, 0 B of [\d.]+ [kM]?B\n/, "the tables' size on the master as the yardstick");
      assert.match(r.stderr, /\] dump done in [\d.]+s: 2\/2 tables, [\d.]+ [kM]?B\n/, "the dump's own size when done, no 'of'");
      assert.match(r.stderr, new RegExp(`baked snapshot ${result.manifest.id}: 2 tables, 60002 rows, [\\d.]+ MB PGDATA in [\\d.]+s -> ${out}\\n$`));
      first = { id: result.manifest.id, json: readFileSync(path.join(out, "snapshot.json"), "utf8") };
      assert.deepEqual(onlyOut(), ["snap"]);
    });

    for (const [signal, when, code] of [["SIGINT", "dump", 130], ["SIGTERM", "restore", 143]] as const) {
      it(`${signal} during ${when}: stops, kills its children, removes its work, keeps the old snapshot`, async () => {
        const r = await cndbBake(["--source", m.url, "--out", out], { killOn: new RegExp(`\\] ${when} started`), signal });
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stderr, new RegExp(`cndb: bake interrupted \\(${signal}\\); nothing was left behind`));
        assert.deepEqual(onlyOut(), ["snap"]);
        assert.equal(readFileSync(path.join(out, "snapshot.json"), "utf8"), first.json);
        assert.deepEqual(processesUnder(dir), []);
      });
    }

    it("a failed bake leaves it alone; a successful one replaces it", async () => {
      const bad = await cndbBake(["--source", m.url, "--out", out, "--include-table", "nothing"]);
      assert.equal(bad.code, 1);
      assert.equal(readFileSync(path.join(out, "snapshot.json"), "utf8"), first.json);
      const good = await cndbBake(["--source", m.url, "--out", out, "--include-table", "small", "--json"]);
      assert.equal(good.code, 0, good.stderr);
      const manifest = JSON.parse(readFileSync(path.join(out, "snapshot.json"), "utf8"));
      assert.notEqual(manifest.id, first.id);
      assert.deepEqual(manifest.tables.map((t: { name: string }) => t.name), ["small"]);
      assert.deepEqual(onlyOut(), ["snap"]);
      assert.ok(existsSync(path.join(out, "pgdata", "standby.signal")));
    });
  });
});
