import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../../runtime/pg/ports";
import { which } from "../../runtime/reader/mounts";
import { startReplica, type Replica, type ReplicaOptions } from "../../runtime/reader/index";
import { hashTree, mountsUnder, processesIn } from "../helpers/replica";
import { makeTestSnapshot, type TestSnapshot } from "../helpers/snapshot";

async function readAll(r: Replica): Promise<{ n: number; sum: string; one: string }> {
  const c = new pg.Client({ connectionString: r.url() });
  await c.connect();
  try {
    const q = await c.query("SELECT count(*)::int AS n, sum(qty)::text AS sum, (SELECT name FROM items WHERE id = 42) AS one FROM items");
    return q.rows[0];
  } finally {
    await c.end();
  }
}

describe("replica: many replicas from one snapshot", function () {
  this.timeout(90000);
  let snap: TestSnapshot;
  let work: string;
  let hash0: string;
  const running: Replica[] = [];
  const expected = { n: 2000, sum: "", one: "item-42" };

  before(async () => {
    snap = await makeTestSnapshot({ rows: 2000 });
    hash0 = hashTree(snap.dir);
    work = mkdtempSync(path.join(os.tmpdir(), "cndb-rmany-"));
    chmodSync(work, 0o755);
    expected.sum = String(Array.from({ length: 2000 }, (_, i) => (i + 1) % 97).reduce((a, b) => a + b, 0));
  });
  after(async () => {
    for (const r of running) await r.stop().catch(() => undefined);
    snap?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("runs overlay, copy and fuse-overlayfs replicas at once, each on its own working copy", async () => {
    const kinds: NonNullable<ReplicaOptions["workingCopy"]>[] = ["overlay", "overlay", "copy"];
    // .ci/run installs fuse-overlayfs: its absence is a broken setup, not a reason to test less.
    assert.ok(which("fuse-overlayfs"), "fuse-overlayfs is not installed (apt-get install fuse-overlayfs)");
    kinds.push("fuse-overlayfs");
    const started = await Promise.all(
      kinds.map(async (workingCopy, i) =>
        startReplica({ snapshot: snap.dir, port: await freePort(), workDir: work, workingCopy, warmup: i === 1 ? "full" : "files" }),
      ),
    );
    running.push(...started);
    assert.deepEqual(started.map((r) => r.workingCopy), kinds);
    assert.equal(new Set(started.map((r) => r.dataDir)).size, kinds.length);
    for (const r of started) assert.deepEqual(await readAll(r), expected);
    // Each replica's own files (postmaster.pid, stats) stay its own.
    for (const r of started) assert.equal(statSync(path.join(r.dataDir, "postmaster.pid")).isFile(), true);
    await Promise.all(started.map((r) => r.stop()));
    assert.deepEqual(mountsUnder(work), []);
    for (const r of started) assert.deepEqual(processesIn(r.dataDir), []);
    assert.deepEqual(readdirSync(work), []);
    assert.equal(hashTree(snap.dir), hash0, "the snapshot's files changed");
  });

  it("chowns a snapshot owned by another uid inside the overlay, leaving the snapshot as it was", async function () {
    if (process.getuid!() !== 0) this.skip();
    const other = path.join(work, "foreign");
    execFileSync("cp", ["-a", snap.dir, other]);
    execFileSync("chown", ["-R", "nobody:nogroup", other]);
    const h = hashTree(other);
    const r = await startReplica({ snapshot: other, port: await freePort(), workDir: path.join(work, "w"), warmup: "none" });
    running.push(r);
    assert.equal(r.workingCopy, "overlay");
    assert.deepEqual(await readAll(r), expected);
    await r.stop();
    assert.deepEqual(mountsUnder(work), []);
    assert.equal(hashTree(other), h);
    rmSync(other, { recursive: true, force: true });
  });

  it("runs in place on the snapshot's own PGDATA, on a given socket dir only", async () => {
    const copy = path.join(work, "inplace");
    execFileSync("cp", ["-a", snap.dir, copy]);
    const socketDir = path.join(work, "sock");
    const r = await startReplica({ snapshot: copy, port: await freePort(), inPlace: true, listen: "", socketDir });
    running.push(r);
    assert.equal(r.workingCopy, "in-place");
    assert.equal(r.dataDir, path.join(copy, "pgdata"));
    assert.equal(r.socketDir, socketDir);
    assert.match(r.url(), /\?host=/);
    assert.deepEqual(await readAll(r), expected); // over the socket: no TCP listener
    const tcp = new pg.Client({ host: "127.0.0.1", port: r.port, user: "reader", database: snap.database });
    await assert.rejects(tcp.connect(), /ECONNREFUSED/);
    await r.stop();
    assert.deepEqual(processesIn(r.dataDir), []);
    rmSync(copy, { recursive: true, force: true });
  });
});
