import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { Backends, buildApi, type ReplicaSpec } from "../../runtime/api/index";
import { startApiFixture, type ApiFixture } from "../helpers/api-fixture";

/**
 * Two replicas with different snapshots (servers A and B: row 1 of items is named after its server,
 * and B has a table A lacks), behind one API: switches, round-robin, a replica dying, drain.
 */
describe("read API backends: switching, failover, drain", function () {
  this.timeout(90000);
  let a: ApiFixture;
  let b: ApiFixture;
  let backends: Backends;
  let app: FastifyInstance;
  let specA: ReplicaSpec;
  let specB: ReplicaSpec;

  before(async () => {
    [a, b] = await Promise.all([
      startApiFixture({ extraSql: "UPDATE items SET name = 'from-A' WHERE id = 1" }),
      startApiFixture({ extraSql: "UPDATE items SET name = 'from-B' WHERE id = 1; CREATE TABLE only_b (id int PRIMARY KEY); GRANT SELECT ON only_b TO reader" }),
    ]);
    assert.notEqual(a.snapshot.id, b.snapshot.id);
    specA = { id: "a", url: a.readerUrl, snapshot: a.snapshot };
    specB = { id: "b", url: b.readerUrl, snapshot: b.snapshot };
    backends = new Backends([specA], { probeIntervalMs: 200, poolSize: 4 });
    app = await buildApi({ backends, config: { sql: { enabled: true } } });
  });
  after(async () => {
    await app?.close();
    await backends?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const nameOf: Record<string, string> = {};
  before(() => {
    nameOf[a.snapshot.id] = "from-A";
    nameOf[b.snapshot.id] = "from-B";
  });

  /** Requests row 1 (and the SQL route) in a loop until stopped; every answer's headers must match its data. */
  function load(concurrency = 4) {
    let stop = false;
    const seen = new Map<string, number>();
    const failures: string[] = [];
    const state = { onlyB: false };
    const one = async (i: number) => {
      const sql = i % 3 === 0;
      const mustBeB = state.onlyB;
      const r = sql
        ? await app.inject({ method: "POST", url: "/v1/sql", payload: { sql: "SELECT name FROM items WHERE id = 1" } })
        : await app.inject({ method: "GET", url: "/v1/tables/items/rows/1?select=name" });
      if (r.statusCode !== 200) return failures.push(`${r.statusCode} ${r.body}`);
      const snap = String(r.headers["x-snapshot-id"]);
      const body = JSON.parse(r.body);
      const name = sql ? body.rows[0].name : body.row.name;
      if (nameOf[snap] !== name) failures.push(`headers say ${snap}, data says ${name}`);
      if (mustBeB && snap !== b.snapshot.id) failures.push(`started after the switch to B, served by ${snap}`);
      seen.set(snap, (seen.get(snap) ?? 0) + 1);
    };
    const workers = Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; !stop; i += concurrency) await one(i);
    });
    return {
      seen,
      failures,
      state,
      async end() {
        stop = true;
        await Promise.all(workers);
      },
    };
  }
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(cond(), "condition not reached");
  };

  it("switches the whole set under load: no failed request, headers always agree with the data", async () => {
    const l = load();
    await until(() => (l.seen.get(a.snapshot.id) ?? 0) > 30);
    const etagA = (await app.inject({ url: "/v1/tables/items/rows/1" })).headers.etag as string;
    await backends.set([specB]); // resolves once A's in-flight requests are done and its pool ended
    l.state.onlyB = true;
    assert.equal(backends.replicas()[0].id, "b");
    await until(() => (l.seen.get(b.snapshot.id) ?? 0) > 30);
    await l.end();
    assert.deepEqual(l.failures, []);
    // The new snapshot's catalog is used, and a client's old ETag no longer matches.
    assert.equal((await app.inject({ url: "/v1/tables/only_b/rows" })).statusCode, 200);
    const r = await app.inject({ url: "/v1/tables/items/rows/1", headers: { "if-none-match": etagA } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers["x-snapshot-id"], b.snapshot.id);
    assert.equal(JSON.parse((await app.inject({ url: "/v1/snapshot" })).body).id, b.snapshot.id);
  });

  it("round-robins over several replicas; each response is labelled by the replica that served it", async () => {
    await backends.set([specA, specB]);
    const l = load(2);
    await until(() => (l.seen.get(a.snapshot.id) ?? 0) > 20 && (l.seen.get(b.snapshot.id) ?? 0) > 20);
    await l.end();
    assert.deepEqual(l.failures, []);
    // Only on A: found or not found depending on who serves; never a 5xx.
    const statuses = new Set<number>();
    for (let i = 0; i < 10; i++) statuses.add((await app.inject({ url: "/v1/tables/only_b/rows" })).statusCode);
    assert.deepEqual([...statuses].sort(), [200, 404]);
  });

  it("a replica that dies costs no failed request; when all are gone: 503 and not ready; back when it returns", async () => {
    // A third server, C, that this test may kill.
    const c = await startApiFixture({ extraSql: "UPDATE items SET name = 'from-C' WHERE id = 1" });
    try {
      nameOf[c.snapshot.id] = "from-C";
      await backends.set([specB, { id: "c", url: c.readerUrl, snapshot: c.snapshot }]);
      const l = load();
      await until(() => (l.seen.get(c.snapshot.id) ?? 0) > 20);
      await c.master.server.stop("immediate");
      const atKill = l.seen.get(b.snapshot.id) ?? 0;
      await until(() => (l.seen.get(b.snapshot.id) ?? 0) > atKill + 50);
      await l.end();
      assert.deepEqual(l.failures, [], "the retry on the other replica hides the dead one");
      assert.equal(backends.replicas().find((r) => r.id === "c")!.ready, false);
      assert.equal((await app.inject({ url: "/readyz" })).statusCode, 200);
      const metrics = (await app.inject({ url: "/metrics" })).body;
      assert.match(metrics, /cndb_api_replica_ready\{replica="c",snapshot="[^"]+"\} 0/);

      // Only a dead replica left: a clean 503, readiness fails.
      await backends.set([{ id: "c", url: c.readerUrl, snapshot: c.snapshot }]);
      const dead = await app.inject({ url: "/v1/tables/items/rows/1" });
      assert.equal(dead.statusCode, 503);
      assert.equal(JSON.parse(dead.body).error.code, "replica_unavailable");
      const ready = await app.inject({ url: "/readyz" });
      assert.equal(ready.statusCode, 503);
      assert.equal(JSON.parse(ready.body).status, "not_ready");
      assert.equal((await app.inject({ url: "/healthz" })).statusCode, 200);
    } finally {
      await c.stop();
    }
    // Back to a live replica: the next set and probes bring it in.
    await backends.set([specA]);
    assert.equal((await app.inject({ url: "/v1/tables/items/rows/1" })).statusCode, 200);
  });

  it("a replica marked down comes back once probes reach it again", async () => {
    const r = backends.replicas()[0];
    backends.markDown(r, new Error("test"));
    assert.equal(r.ready, false);
    await until(() => r.ready);
  });

  it("no replica configured: 503 with a clear code, not a crash", async () => {
    await backends.set([]);
    const r = await app.inject({ url: "/v1/tables" });
    assert.equal(r.statusCode, 503);
    assert.equal(JSON.parse(r.body).error.code, "no_replica");
    assert.equal((await app.inject({ url: "/readyz" })).statusCode, 503);
    await backends.set([specA]);
  });
});
