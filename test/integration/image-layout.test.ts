import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { IMAGE_PGDATA, IMAGE_SNAPSHOT_DIR } from "../../common/contract";
import { LABELS } from "../../common/snapshot";
import { writeImageLayout } from "../../runtime/bake/image/index";
import { blobFile, blobJson, fileDigest, gunzipDigest, layoutJson, tarEntries } from "../helpers/oci";
import { makeTestSnapshot, type TestSnapshot } from "../helpers/snapshot";

describe("bake image: the OCI layout of a snapshot", function () {
  this.timeout(60000);
  let snap: TestSnapshot;
  let tmp: string;
  const out = (name: string) => path.join(tmp, name);

  before(async () => {
    snap = await makeTestSnapshot({ rows: 2000 });
    tmp = mkdtempSync(path.join(os.tmpdir(), "cndb-image-"));
  });
  after(() => {
    snap?.remove();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("writes a valid layout: index -> manifest -> config + data layer, every digest matching its blob", async () => {
    const events: { phase: string; bytesDone: number; bytesTotal: number }[] = [];
    const r = await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("plain"), compress: false, onProgress: (e) => events.push(e) });
    const dir = out("plain");
    assert.deepEqual(layoutJson(dir, "oci-layout"), { imageLayoutVersion: "1.0.0" });
    const index = layoutJson(dir, "index.json");
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.manifests.length, 1);
    const desc = index.manifests[0];
    assert.equal(desc.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assert.equal(desc.digest, r.manifestDigest);
    assert.equal(desc.annotations["org.opencontainers.image.ref.name"], snap.manifest.id);
    // every blob's name is its digest, every descriptor's size its length
    for (const f of readdirSync(path.join(dir, "blobs", "sha256"))) assert.equal(fileDigest(path.join(dir, "blobs", "sha256", f)), `sha256:${f}`);
    assert.equal(statSync(blobFile(dir, desc.digest)).size, desc.size);
    const manifest = blobJson(dir, desc.digest);
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.config.mediaType, "application/vnd.oci.image.config.v1+json");
    assert.equal(statSync(blobFile(dir, manifest.config.digest)).size, manifest.config.size);
    assert.equal(manifest.layers.length, 1);
    const layer = manifest.layers[0];
    assert.equal(layer.mediaType, "application/vnd.oci.image.layer.v1.tar");
    assert.equal(layer.digest, r.layerDigest);
    assert.equal(statSync(blobFile(dir, layer.digest)).size, layer.size);
    assert.equal(readdirSync(path.join(dir, "blobs", "sha256")).length, 3, "no stray blobs or temp files");

    const config = blobJson(dir, manifest.config.digest);
    assert.equal(config.os, "linux");
    assert.equal(config.architecture, process.arch === "x64" ? "amd64" : process.arch);
    assert.deepEqual(config.rootfs, { type: "layers", diff_ids: [layer.digest] }, "uncompressed: diff_id = layer digest");
    assert.equal(config.created, snap.manifest.createdAt);
    assert.equal(config.history.length, 1);
    assert.match(config.history[0].created_by, new RegExp(snap.manifest.id));
    assert.deepEqual(config.config.Env, [`PGDATA=${IMAGE_PGDATA}`, `CNDB_SNAPSHOT=${IMAGE_SNAPSHOT_DIR}`]);
    assert.equal(config.config.Labels[LABELS.snapshotId], snap.manifest.id);
    assert.equal(config.config.Labels[LABELS.sourceLsn], snap.manifest.source.lsn);
    assert.equal(config.config.Labels[LABELS.sourceTime], snap.manifest.source.time);
    assert.equal(config.config.Labels[LABELS.postgresMajor], String(snap.manifest.postgresMajor));

    const last = events.at(-1)!;
    assert.equal(last.phase, "layer");
    assert.equal(last.bytesDone, last.bytesTotal);
    assert.ok(last.bytesTotal > 10 << 20, "PGDATA bytes counted");
  });

  it("puts pgdata and snapshot.json at IMAGE_SNAPSHOT_DIR with parents, owners and modes kept, nothing else", async () => {
    const dir = out("plain");
    const manifest = blobJson(dir, layoutJson(dir, "index.json").manifests[0].digest);
    const entries = await tarEntries(blobFile(dir, manifest.layers[0].digest));
    const names = entries.map((e) => e.name);
    assert.deepEqual(names.slice(0, 5), ["var", "var/lib", "var/lib/cndb", "var/lib/cndb/snapshot", "var/lib/cndb/snapshot/pgdata"]);
    assert.ok(names.includes("var/lib/cndb/snapshot/snapshot.json"));
    assert.ok(names.includes("var/lib/cndb/snapshot/pgdata/PG_VERSION"));
    assert.ok(names.includes("var/lib/cndb/snapshot/pgdata/standby.signal"));
    const inside = names.slice(4).map((n) => n.slice("var/lib/cndb/snapshot/".length));
    assert.ok(inside.every((n) => n === "snapshot.json" || n === "pgdata" || n.startsWith("pgdata/")), "only pgdata and snapshot.json");
    // depth-first, each directory's entries in byte order: a stable order whatever readdir returns
    const byDir = new Map<string, string[]>();
    for (const n of names) byDir.set(path.posix.dirname(n), [...(byDir.get(path.posix.dirname(n)) ?? []), path.posix.basename(n)]);
    for (const [d, kids] of byDir) assert.deepEqual(kids, [...kids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), d);
    const pgdata = entries.find((e) => e.name === "var/lib/cndb/snapshot/pgdata")!;
    const st = statSync(path.join(snap.dir, "pgdata"));
    assert.equal(pgdata.mode, 0o700);
    assert.equal(pgdata.uid, st.uid);
    assert.equal(pgdata.gid, st.gid);
    const ver = entries.find((e) => e.name.endsWith("pgdata/PG_VERSION"))!;
    const vst = lstatSync(path.join(snap.dir, "pgdata", "PG_VERSION"));
    assert.equal(ver.mode, vst.mode & 0o7777);
    assert.equal(ver.uid, vst.uid);
    assert.equal(ver.size, vst.size);
    const parents = entries.slice(0, 3);
    assert.ok(parents.every((e) => e.uid === 0 && e.gid === 0 && e.mode === 0o755 && e.type === "directory"));
    assert.equal(entries[3].mode, 0o755, "the snapshot dir is traversable by the reader");
    const mtime = new Date(snap.manifest.createdAt).getTime();
    assert.ok(entries.every((e) => Math.abs(e.mtime - mtime) < 1000 && e.uname === "" && e.gname === ""), "one mtime, no user/group names");
  });

  it("is deterministic: the same snapshot gives the same layer and manifest digests", async () => {
    // times of the snapshot's files must not matter
    const f = path.join(snap.dir, "pgdata", "PG_VERSION");
    utimesSync(f, new Date(2000, 1, 1), new Date(2001, 1, 1));
    const again = await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("again"), compress: false });
    const first = layoutJson(out("plain"), "index.json").manifests[0].digest;
    assert.equal(again.manifestDigest, first);
    assert.equal(again.layerDigest, blobJson(out("plain"), first).layers[0].digest);
    // ...and a different owner override changes it (the digest really covers owners)
    const other = await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("owned"), compress: false, owner: { uid: 999, gid: 999 } });
    assert.notEqual(other.layerDigest, again.layerDigest);
    const entries = await tarEntries(blobFile(out("owned"), other.layerDigest));
    assert.ok(entries.filter((e) => e.name.startsWith("var/lib/cndb/snapshot/")).every((e) => e.uid === 999 && e.gid === 999));
  });

  it("gzips the data layer by default: diff_id is the uncompressed tar's digest, and gzip is deterministic too", async () => {
    const a = await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("gz1") });
    const b = await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("gz2"), compress: true });
    assert.equal(a.layerDigest, b.layerDigest);
    assert.equal(a.manifestDigest, b.manifestDigest);
    const manifest = blobJson(out("gz1"), a.manifestDigest);
    assert.equal(manifest.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
    const config = blobJson(out("gz1"), manifest.config.digest);
    const plainLayer = blobJson(out("plain"), layoutJson(out("plain"), "index.json").manifests[0].digest).layers[0];
    assert.equal(await gunzipDigest(blobFile(out("gz1"), a.layerDigest)), plainLayer.digest);
    assert.deepEqual(config.rootfs.diff_ids, [plainLayer.digest]);
    assert.ok(manifest.layers[0].size < plainLayer.size / 2, "PGDATA compresses");
  });

  it("refuses bad input with a clear error and leaves nothing behind", async () => {
    const empty = out("no-pgdata");
    mkdirSync(empty);
    writeFileSync(path.join(empty, "snapshot.json"), "{}");
    await assert.rejects(writeImageLayout({ snapshotDir: empty, manifest: snap.manifest, out: out("x1") }), /pgdata is missing/);
    assert.equal(existsSync(out("x1")), false);
    const linked = out("linked");
    mkdirSync(path.join(linked, "pgdata"), { recursive: true });
    writeFileSync(path.join(linked, "snapshot.json"), "{}");
    symlinkSync("/var/lib/elsewhere/pg_wal", path.join(linked, "pgdata", "pg_wal"));
    await assert.rejects(writeImageLayout({ snapshotDir: linked, manifest: snap.manifest, out: out("x5") }), /pg_wal is a symlink to \/var\/lib\/elsewhere\/pg_wal, outside the snapshot dir/);
    await assert.rejects(writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("plain") }), /--image: output directory .* is not empty/);
    await assert.rejects(writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("x2"), baseImage: "Bad Ref" }), /--base-image: invalid image reference "Bad Ref"/);
    await assert.rejects(writeImageLayout({ snapshotDir: snap.dir, manifest: { ...snap.manifest, id: "nope" }, out: out("x3") }), /manifest: id/);
    const ac = new AbortController();
    ac.abort(new Error("interrupted"));
    await assert.rejects(writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: out("x4"), signal: ac.signal }), /interrupted|abort/i);
    for (const x of ["x1", "x2", "x3", "x4", "x5"]) assert.equal(existsSync(out(x)), false, x);
  });
});
