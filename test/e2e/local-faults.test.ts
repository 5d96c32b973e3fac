import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { BakeError } from "../../runtime/bake";
import { loadDemoData } from "../../runtime/local/demo-data";
import { LocalDeployment } from "../../runtime/local/up";
import { freePort } from "../../runtime/pg/ports";
import { startLoad } from "../helpers/load";
import { startTestMaster, type TestMaster } from "../helpers/pg";

describe("local mode with --master: failing bakes, schedules, restarts", function () {
  this.timeout(180_000);
  let master: TestMaster;
  let state: string;
  const logs: string[] = [];

  before(async () => {
    master = await startTestMaster();
    const c = new pg.Client(master.url);
    await c.connect();
    await loadDemoData(c, { scale: 0.05 });
    await c.end();
    state = mkdtempSync(path.join(os.tmpdir(), "cndb-faults-"));
  });
  after(async () => {
    await master?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("a bake that fails mid-way (master stopped) leaves the current snapshot serving", async () => {
    let stopMaster: (() => void) | undefined;
    const d = await LocalDeployment.start({
      stateDir: state, master: master.url, replicas: 2, port: await freePort(), jobs: 1,
      log: (l) => {
        logs.push(l);
        if (/bake .*dump started/.test(l)) stopMaster?.();
      },
    });
    try {
      const before = d.status().snapshot.current!.id;
      const load = startLoad([`${d.apiUrl}/v1/tables/automl.trials/rows?limit=5`], { clients: 4 });
      let stopped: Promise<void> | undefined;
      stopMaster = () => {
        stopMaster = undefined;
        stopped = master.server.stop("immediate");
      };
      // Whichever step the stop hits (dump, checksums, verify against the master), it is the bake that fails.
      await assert.rejects(d.refresh(), (e: Error & { code?: string }) => e instanceof BakeError && ["dump", "source-unreachable", "verify"].includes(e.code!));
      await stopped;
      const result = await load.stop();
      assert.deepEqual(result.failed, []);
      assert.deepEqual([...result.snapshotIds], [before]);
      assert.equal(d.status().snapshot.current!.id, before);
      assert.ok(d.status().replicas.every((r) => r.ready && r.snapshotId === before));
      assert.deepEqual(readdirSync(path.join(state, "snapshots")), [before], "nothing half-baked is left beside the good snapshot");
      assert.equal((await fetch(`${d.apiUrl}/v1/tables/automl.projects/rows/1`)).status, 200);
    } finally {
      await d.stop();
    }
  });

  it("a later start reuses the state: same snapshot, no bake", async () => {
    const before = JSON.parse(require("node:fs").readFileSync(path.join(state, "state.json"), "utf8")).snapshots.current;
    logs.length = 0;
    // Stopped by the test above; --master is probed before anything starts.
    master = await restartMaster(master);
    const d = await LocalDeployment.start({ stateDir: state, master: master.url, replicas: 1, port: await freePort(), log: (l) => logs.push(l) });
    try {
      assert.equal(d.status().snapshot.current!.id, before);
      assert.ok(logs.some((l) => l.includes(`reusing snapshot ${before}`)));
      assert.ok(!logs.some((l) => /bake .*dump started/.test(l)), "no bake on restart");
    } finally {
      await d.stop();
    }
  });

  it("--refresh-every bakes and switches on a schedule", async () => {
    const d = await LocalDeployment.start({ stateDir: state, master: master.url, replicas: 1, port: await freePort(), refreshEveryMs: 500, jobs: 1, log: () => undefined });
    try {
      const first = d.status().snapshot.current!.id;
      let now = first;
      for (let i = 0; i < 300 && now === first; i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = d.status().snapshot.current!.id;
      }
      assert.notEqual(now, first);
      assert.equal(d.status().snapshot.previous!.id, first);
    } finally {
      await d.stop();
    }
    assert.ok(readdirSync(path.join(state, "snapshots")).length <= 2, "only the last two snapshots are kept");
  });
});

/** Starts the same data dir again (the test master's server object is single-use). */
async function restartMaster(m: TestMaster): Promise<TestMaster> {
  const { findPgBinaries } = await import("../../runtime/pg/binaries");
  const { startServer } = await import("../../runtime/pg/server");
  const server = await startServer(await findPgBinaries(), { dataDir: m.server.opts.dataDir, port: m.server.port, settings: { fsync: false } });
  return { ...m, server, stop: async () => { await server.stop("immediate"); rmSync(m.dir, { recursive: true, force: true }); } };
}
