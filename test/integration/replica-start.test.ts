import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../../runtime/pg/ports";
import { startReplica, type Replica } from "../../runtime/reader/index";
import { alive, errorOf, hashTree, mountsUnder, processesIn } from "../helpers/replica";
import { makeTestSnapshot, type TestSnapshot } from "../helpers/snapshot";

describe("replica: a read-only replica from a snapshot", function () {
  this.timeout(60000);
  let snap: TestSnapshot;
  let work: string;
  let before0: string;
  let replica: Replica;
  const readyFile = () => path.join(work, "run", "ready");

  before(async () => {
    snap = await makeTestSnapshot({ rows: 500 });
    before0 = hashTree(snap.dir);
    work = mkdtempSync(path.join(os.tmpdir(), "cndb-rtest-"));
    chmodSync(work, 0o755); // PostgreSQL's account must reach its data dir inside
    replica = await startReplica({ snapshot: snap.dir, port: await freePort(), workDir: work, readyFile: readyFile() });
  });
  after(async () => {
    await replica?.stop();
    snap?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("reports ready once it serves the snapshot as a hot standby", async () => {
    assert.match(replica.readyLine, new RegExp(`^ready snapshot=${snap.manifest.id} port=${replica.port} startup_ms=\\d+$`));
    assert.equal(readFileSync(readyFile(), "utf8"), replica.readyLine + "\n");
    assert.equal(replica.workingCopy, "overlay");
    assert.deepEqual(mountsUnder(work), [replica.dataDir]);
    assert.equal(replica.warmup.mode, "files");
    // Warm-up copied every relation file up before any client came: no query pays for it.
    const files = (d: string, rel = ""): string[] =>
      readdirSync(path.join(d, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(d, path.join(rel, e.name)) : [path.join(rel, e.name)]));
    const upper = path.join(path.dirname(replica.dataDir), "overlay-upper");
    const lowerRel = files(path.join(snap.dir, "pgdata", "base"));
    assert.ok(lowerRel.length > 100);
    const upperRel = new Set(files(path.join(upper, "base")));
    assert.deepEqual(lowerRel.filter((f) => !upperRel.has(f)), []);
    const c = new pg.Client({ connectionString: replica.url() });
    await c.connect();
    const r = await c.query("SELECT pg_is_in_recovery() AS rec, current_user AS u, (SELECT count(*)::int FROM items) AS n, inet_server_port() AS port");
    await c.end();
    assert.deepEqual(r.rows[0], { rec: true, u: "reader", n: 500, port: replica.port });
  });

  it("runs PostgreSQL as the postgres account on a 0700 data dir it owns", () => {
    const pid = replica.pid;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
    if (process.getuid!() === 0) assert.equal(uid, Number(execFileSync("id", ["-u", "postgres"]).toString()));
    assert.equal(readFileSync(path.join(replica.dataDir, "postmaster.pid"), "utf8").split("\n")[0], String(pid));
  });

  it("refuses every write, whoever asks", async () => {
    const writes = [
      "INSERT INTO items VALUES (0, 'x', 1, NULL)",
      "UPDATE items SET qty = 0 WHERE id = 1",
      "DELETE FROM items WHERE id = 1",
      "CREATE TABLE t (a int)",
      "CREATE TEMP TABLE t (a int)",
      "SELECT nextval('item_seq')",
      "TRUNCATE items",
      "VACUUM items",
    ];
    // The reader over TCP, and the superuser over the Unix socket (the baked pg_hba allows it only there).
    const superuser = replica.url("postgres");
    assert.match(superuser, /\?host=/);
    for (const url of [replica.url(), superuser]) {
      for (const sql of writes) {
        const err = await errorOf(url, sql);
        assert.match(err ?? "accepted", /read-only transaction|during recovery|must be owner|permission denied/, `${url}: ${sql}`);
      }
      assert.match((await errorOf(url, "SET TRANSACTION READ WRITE")) ?? "accepted", /cannot set transaction read-write mode during recovery/);
      const err = await errorOf(url, ["SET default_transaction_read_only = off", "INSERT INTO items VALUES (0, 'x', 1, NULL)"]);
      assert.match(err ?? "accepted", /read-only transaction/);
    }
    assert.match((await errorOf(replica.url(), "SELECT pg_promote()")) ?? "accepted", /permission denied/);
    assert.equal(await errorOf(superuser, "SELECT 1 WHERE current_user = 'postgres'"), undefined); // it really was the superuser
    const n = await new pg.Client({ connectionString: replica.url() });
    await n.connect();
    assert.equal((await n.query("SELECT count(*)::int AS n FROM items")).rows[0].n, 500);
    await n.end();
  });

  it("stops: PostgreSQL gone, nothing mounted, working copy, ready file and socket removed, snapshot untouched", async () => {
    const { pid, dataDir, socketDir } = replica;
    await replica.stop();
    await replica.stop(); // idempotent
    assert.equal(await replica.exited, 0);
    assert.equal(alive(pid), false);
    assert.deepEqual(processesIn(dataDir), []);
    assert.deepEqual(mountsUnder(work), []);
    assert.deepEqual(readdirSync(work).filter((e) => e !== "run"), []);
    assert.equal(existsSync(readyFile()), false);
    assert.equal(existsSync(socketDir), false);
    assert.equal(hashTree(snap.dir), before0);
  });

  it("cleans up by itself when PostgreSQL dies", async () => {
    const r = await startReplica({ snapshot: snap.dir, port: await freePort(), workDir: work, warmup: "none" });
    process.kill(r.pid, "SIGKILL");
    assert.equal(await r.exited, null);
    assert.deepEqual(mountsUnder(work), []);
    assert.deepEqual(processesIn(r.dataDir), []);
    assert.deepEqual(readdirSync(work).filter((e) => e !== "run"), []);
  });

  it("cleans up a start that is aborted half-way", async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    const start = startReplica({
      snapshot: snap.dir,
      port: await freePort(),
      workDir: work,
      signal: ac.signal,
      log: (l) => {
        lines.push(l);
        if (l.startsWith("working copy: overlay")) ac.abort(new Error("test abort"));
      },
    });
    await assert.rejects(start, /test abort/);
    assert.ok(lines.some((l) => l.startsWith("working copy: overlay")), lines.join("\n"));
    assert.deepEqual(mountsUnder(work), []);
    assert.deepEqual(readdirSync(work).filter((e) => e !== "run"), []);
    assert.equal(hashTree(snap.dir), before0);
  });
});
