import assert from "node:assert/strict";
import { LABELS, SNAPSHOT_FORMAT, type SnapshotManifest } from "../../common/snapshot";
import { buildImageConfig, mergeEnv } from "../../runtime/bake/image/config";
import { ociLayerMediaType, MT } from "../../runtime/bake/image/oci";

const manifest: SnapshotManifest = {
  format: SNAPSHOT_FORMAT,
  id: "20240102T030405Z-abcdef",
  createdAt: "2024-01-02T03:04:05.000Z",
  source: { host: "db", database: "app", serverVersion: "15.8", lsn: "0/3000060", time: "2024-01-02T03:04:00.000Z" },
  postgresMajor: 15,
  schemas: ["public"],
  tables: [],
  pgdataBytes: 1,
};

describe("bake image: image config", () => {
  it("merges env by name: ours replace the base's values in place, new names follow", () => {
    assert.deepEqual(mergeEnv(["PATH=/bin", "PGDATA=/var/lib/postgresql/data", "X=a=b"], { PGDATA: "/p", NEW: "1" }), ["PATH=/bin", "PGDATA=/p", "X=a=b", "NEW=1"]);
    assert.deepEqual(mergeEnv(undefined, { A: "1" }), ["A=1"]);
  });

  it("without a base: our env, labels, one diff_id and one history entry on linux/<host arch>", () => {
    const c = buildImageConfig({ manifest, diffId: "sha256:d", created: manifest.createdAt });
    assert.equal(c.os, "linux");
    assert.deepEqual(c.rootfs, { type: "layers", diff_ids: ["sha256:d"] });
    assert.deepEqual(c.config?.Env, ["PGDATA=/var/lib/cndb/snapshot/pgdata", "CNDB_SNAPSHOT=/var/lib/cndb/snapshot"]);
    assert.deepEqual(c.config?.Labels, {
      [LABELS.snapshotId]: manifest.id,
      [LABELS.sourceLsn]: "0/3000060",
      [LABELS.sourceTime]: "2024-01-02T03:04:00.000Z",
      [LABELS.postgresMajor]: "15",
      "org.opencontainers.image.created": manifest.createdAt,
    });
    assert.equal(c.history?.length, 1);
    assert.equal(c.config?.Entrypoint, undefined);
  });

  it("on a base: keeps its arch, entrypoint, cmd, user, labels, diff_ids and history, and ours win on a clash", () => {
    const c = buildImageConfig({
      manifest,
      diffId: "sha256:ours",
      created: manifest.createdAt,
      base: {
        architecture: "arm64",
        variant: "v8",
        os: "linux",
        config: { User: "999", Entrypoint: ["e"], Cmd: ["c"], Env: ["PGDATA=/x"], Labels: { a: "1", [LABELS.snapshotId]: "stale" }, StopSignal: "SIGINT" },
        rootfs: { type: "layers", diff_ids: ["sha256:b1", "sha256:b2"] },
        history: [{ created_by: "b1" }, { created_by: "b2" }],
      },
    });
    assert.equal(c.architecture, "arm64");
    assert.equal(c.variant, "v8");
    assert.equal(c.config?.User, "999");
    assert.deepEqual(c.config?.Entrypoint, ["e"]);
    assert.deepEqual(c.config?.Cmd, ["c"]);
    assert.equal(c.config?.StopSignal, "SIGINT");
    assert.equal(c.config?.Labels?.a, "1");
    assert.equal(c.config?.Labels?.[LABELS.snapshotId], manifest.id);
    assert.deepEqual(c.config?.Env, ["PGDATA=/var/lib/cndb/snapshot/pgdata", "CNDB_SNAPSHOT=/var/lib/cndb/snapshot"]);
    assert.deepEqual(c.rootfs.diff_ids, ["sha256:b1", "sha256:b2", "sha256:ours"]);
    assert.deepEqual(c.history?.map((h) => h.created_by?.slice(0, 9)), ["b1", "b2", "cndb bake"]);
  });

  it("maps Docker layer media types to OCI ones", () => {
    assert.equal(ociLayerMediaType(MT.dockerLayerGzip), MT.layerGzip);
    assert.equal(ociLayerMediaType(MT.layer), MT.layer);
  });
});
