import assert from "node:assert/strict";
import { Backends, type ReplicaSpec } from "../../runtime/api/backends";
import type { SnapshotManifest } from "../../common/snapshot";

// Pools connect lazily: nothing here opens a connection (port 1 would refuse anyway).
const snap = (id: string) => ({ id }) as SnapshotManifest;
const spec = (id: string, snapshot = "20240101T000000Z-aaaaaa"): ReplicaSpec => ({ id, url: `postgres://x@127.0.0.1:1/db?${id}`, snapshot: snap(snapshot) });

describe("runtime/api Backends: the replica set", () => {
  let b: Backends;
  afterEach(async () => b?.close());

  it("round-robins over ready replicas, skips those marked down, falls back to all when none is ready", () => {
    b = new Backends([spec("a"), spec("b"), spec("c")]);
    const ids = () => Array.from({ length: 6 }, () => b.pick()!.id).sort().join("");
    assert.equal(ids(), "aabbcc");
    const [ra, rb] = b.replicas();
    b.markDown(ra, new Error("x"));
    assert.equal(ids(), "bbbccc");
    b.markDown(rb, new Error("x"));
    b.markDown(b.replicas()[2], new Error("x"));
    assert.equal(ids(), "aabbcc");
    assert.equal(b.pick(rb)!.id === "b", false);
  });

  it("swaps the set at once, keeps unchanged replicas' pools, retires the others", async () => {
    b = new Backends([spec("a"), spec("b")]);
    const [ra, rb] = b.replicas();
    const changes: string[][] = [];
    b.on("change", (rs: { id: string }[]) => changes.push(rs.map((r) => r.id)));
    await b.set([spec("a"), spec("c", "20240102T000000Z-bbbbbb")]);
    assert.equal(b.replicas()[0], ra, "same spec: same replica and pool");
    assert.ok(rb.retired);
    assert.deepEqual(changes, [["a", "c"]]);
    assert.equal(b.snapshot?.id, "20240101T000000Z-aaaaaa");
    // A new snapshot under the same id is a new replica.
    await b.set([spec("a", "20240103T000000Z-cccccc")]);
    assert.notEqual(b.replicas()[0], ra);
    assert.equal(b.snapshot?.id, "20240103T000000Z-cccccc");
  });

  it("refuses malformed sets", () => {
    b = new Backends();
    assert.equal(b.pick(), undefined);
    assert.throws(() => b.set([spec("a"), spec("a")]), /replica id a given twice/);
    assert.throws(() => b.set([{ id: "x", snapshot: snap("s") }]), /replica x needs a url or a pool config/);
    assert.throws(() => b.set([{ ...spec("a"), id: "" }]), /needs an id/);
  });

  it("run() answers 503 when there is no replica", async () => {
    b = new Backends();
    await assert.rejects(b.run(async () => 1), (e: { status: number; code: string }) => e.status === 503 && e.code === "no_replica");
  });
});
