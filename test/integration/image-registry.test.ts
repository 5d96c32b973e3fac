import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import * as tar from "tar-stream";
import { gzipSync } from "node:zlib";
import { IMAGE_PGDATA, IMAGE_SNAPSHOT_DIR } from "../../common/contract";
import { LABELS, type SnapshotManifest } from "../../common/snapshot";
import { bake } from "../../runtime/bake/index";
import { pullImage, pushImage, unpackLayer, writeImageLayout, type Progress } from "../../runtime/bake/image/index";
import { resolveAuth } from "../../runtime/bake/image/auth";
import { MT, hostArchitecture, sha256 } from "../../runtime/bake/image/oci";
import { RegistryClient } from "../../runtime/bake/image/registry";
import { freePort } from "../../runtime/pg/ports";
import { startReplica } from "../../runtime/reader/index";
import { blobFile, blobJson, layoutJson } from "../helpers/oci";
import { startTestRegistry, type TestRegistry } from "../helpers/registry";
import { startTestMaster, type TestMaster } from "../helpers/pg";
import { makeTestSnapshot, type TestSnapshot } from "../helpers/snapshot";

/** A small tar layer holding one file. */
async function tarOf(name: string, content: string): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A synthetic "postgres" base image in Docker schema-2 media types, plus a multi-platform list over it. */
async function pushBase(reg: TestRegistry, repo: string): Promise<{ layerDiffId: string; layerDigest: string; manifestDigest: string }> {
  const client = new RegistryClient({ registry: reg.host, repository: repo }, { auth: await resolveAuth(reg.host, { kind: "anonymous" }), actions: "pull,push" });
  const raw = await tarOf("etc/base-marker", "from the base image\n");
  const gz = gzipSync(raw);
  const config = {
    architecture: hostArchitecture(),
    os: "linux",
    config: {
      User: "postgres",
      Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "PGDATA=/var/lib/postgresql/data", "LANG=C.UTF-8"],
      Entrypoint: ["docker-entrypoint.sh"],
      Cmd: ["postgres"],
      Labels: { "org.example.base": "yes" },
    },
    rootfs: { type: "layers", diff_ids: [sha256(raw)] },
    history: [{ created: "2024-01-01T00:00:00Z", created_by: "ADD base" }, { created: "2024-01-01T00:00:00Z", created_by: "ENV x", empty_layer: true }],
  };
  const cfg = Buffer.from(JSON.stringify(config));
  const tmp = mkdtempSync(path.join(os.tmpdir(), "cndb-base-"));
  try {
    for (const b of [cfg, gz]) {
      const f = path.join(tmp, sha256(b).slice(7));
      writeFileSync(f, b);
      await client.uploadBlob(f, sha256(b), b.length);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: MT.dockerConfig, digest: sha256(cfg), size: cfg.length },
      layers: [{ mediaType: MT.dockerLayerGzip, digest: sha256(gz), size: gz.length }],
    }),
  );
  await client.putManifest("1", manifest, MT.dockerManifest);
  const list = (archs: string[]) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.dockerList,
        manifests: archs.map((a) => ({ mediaType: MT.dockerManifest, digest: sha256(manifest), size: manifest.length, platform: { architecture: a, os: "linux" } })),
      }),
    );
  await client.putManifest("multi", list(["s390x", hostArchitecture()]), MT.dockerList);
  await client.putManifest("other-arch", list(["s390x"]), MT.dockerList);
  return { layerDiffId: sha256(raw), layerDigest: sha256(gz), manifestDigest: sha256(manifest) };
}

describe("bake image: a real bake's image, pushed to a real registry, pulled back, a replica started from it", function () {
  this.timeout(60000);
  let snap: { dir: string; manifest: SnapshotManifest };
  let reg: TestRegistry;
  let tmp: string;
  let layout: string;
  let built: { manifestDigest: string; layerDigest: string };
  let sumIds: number;
  const dir = (name: string) => path.join(tmp, name);

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "cndb-imgreg-"));
    chmodSync(tmp, 0o755); // PostgreSQL's account must reach the unpacked PGDATA
    let master: TestMaster | undefined;
    try {
      [master, reg] = await Promise.all([startTestMaster(), startTestRegistry()]);
      await master.server.query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 700) g");
      sumIds = 700 * 701 / 2;
      const baked = await bake({ source: master.url, out: dir("snap"), image: true, jobs: 2 });
      snap = { dir: baked.dir, manifest: baked.manifest };
      built = baked.manifest.image!;
      layout = path.join(baked.dir, "image");
    } finally {
      await master?.stop();
    }
  });
  after(async () => {
    await reg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("pushes under the snapshot id, verifies, and a second push finds every blob already there", async () => {
    const events: Progress[] = [];
    const r = await pushImage({ layoutDir: layout, ref: `${reg.host}/cndb/snap`, onProgress: (e) => events.push(e) });
    assert.equal(r.tag, snap.manifest.id);
    assert.equal(r.ref, `${reg.host}/cndb/snap:${snap.manifest.id}`);
    assert.equal(r.pinnedRef, `${reg.host}/cndb/snap@${built.manifestDigest}`);
    assert.equal(r.manifestDigest, built.manifestDigest);
    assert.deepEqual(r.blobs.map((b) => b.how), ["uploaded", "uploaded"]);
    const last = events.at(-1)!;
    assert.equal(last.phase, "push");
    assert.equal(last.bytesDone, last.bytesTotal);
    assert.equal(last.bytesTotal, r.blobs.reduce((n, b) => n + b.size, 0));
    // the registry serves exactly our manifest bytes by tag
    const res = await fetch(`${reg.url}/v2/cndb/snap/manifests/${snap.manifest.id}`, { headers: { accept: MT.manifest } });
    assert.equal(res.headers.get("docker-content-digest"), built.manifestDigest);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), built.manifestDigest);
    const again = await pushImage({ layoutDir: layout, ref: `${reg.host}/cndb/snap` });
    assert.deepEqual(again.blobs.map((b) => b.how), ["exists", "exists"]);
    assert.equal(r.manifest, "pushed");
    assert.equal(again.manifest, "exists");
  });

  it("pulls back by tag and by digest, and a replica starts on the unpacked data layer", async () => {
    const byTag = await pullImage(`${reg.host}/cndb/snap:${snap.manifest.id}`, dir("pull-tag"));
    const byDigest = await pullImage(`${reg.host}/cndb/snap@${built.manifestDigest}`, dir("pull-digest"));
    assert.equal(byTag.descriptor.digest, built.manifestDigest);
    assert.equal(byDigest.descriptor.digest, built.manifestDigest);
    assert.equal(layoutJson(dir("pull-tag"), "index.json").manifests[0].annotations["org.opencontainers.image.ref.name"], snap.manifest.id);
    assert.deepEqual(readFileSync(blobFile(dir("pull-tag"), built.layerDigest)), readFileSync(blobFile(layout, built.layerDigest)));
    assert.equal(byTag.config.config?.Labels?.[LABELS.snapshotId], snap.manifest.id);

    const root = dir("rootfs");
    await unpackLayer(blobFile(dir("pull-digest"), byDigest.manifest.layers.at(-1)!.digest), root);
    chmodSync(root, 0o755);
    const pgdata = path.join(root, IMAGE_PGDATA);
    const st = statSync(pgdata);
    assert.equal(st.mode & 0o7777, 0o700);
    assert.equal(st.uid, statSync(path.join(snap.dir, "pgdata")).uid);
    assert.ok(existsSync(path.join(pgdata, "standby.signal")));
    assert.ok(existsSync(path.join(snap.dir, "image")) && !existsSync(path.join(root, IMAGE_SNAPSHOT_DIR, "image")), "the layout itself stays out of the layer");
    // the snapshot.json inside the image is the bake's, before it learnt the image's own digest
    const { image: _image, ...inImage } = snap.manifest;
    assert.deepEqual(JSON.parse(readFileSync(path.join(root, IMAGE_SNAPSHOT_DIR, "snapshot.json"), "utf8")), inImage);

    const work = dir("work");
    mkdirSync(work, { mode: 0o755 });
    const replica = await startReplica({ snapshot: path.join(root, IMAGE_SNAPSHOT_DIR), port: await freePort(), workDir: work, warmup: "none" });
    try {
      const c = new pg.Client({ connectionString: replica.url() });
      await c.connect();
      const r = await c.query("SELECT pg_is_in_recovery() AS rec, (SELECT count(*)::int FROM items) AS n, (SELECT sum(id)::int FROM items) AS s");
      await c.end();
      assert.deepEqual(r.rows[0], { rec: true, n: 700, s: sumIds });
      assert.equal(replica.snapshotId, snap.manifest.id);
    } finally {
      await replica.stop();
    }
  });

  it("pushes under the tag REF names, in chunks when asked", async () => {
    const layerSize = statSync(blobFile(layout, built.layerDigest)).size;
    assert.ok(layerSize > 3 * 256 * 1024, "the layer spans several chunks");
    const r = await pushImage({ layoutDir: layout, ref: `${reg.host}/team/db:stable`, chunkSize: 256 * 1024 });
    assert.equal(r.tag, "stable");
    assert.deepEqual(r.blobs.map((b) => b.how), ["uploaded", "uploaded"]);
    const pulled = await pullImage(`${reg.host}/team/db:stable`, dir("pull-stable"));
    assert.equal(pulled.descriptor.digest, built.manifestDigest);
  });

  it("builds on a base image: its layers below ours, its entrypoint/cmd/user kept, env merged, labels added", async () => {
    const base = await pushBase(reg, "base/pg");
    const out = dir("with-base");
    const r = await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out, baseImage: `${reg.host}/base/pg:multi` });
    const manifest = blobJson(out, r.manifestDigest);
    assert.deepEqual(
      manifest.layers.map((l: { mediaType: string; digest: string }) => [l.mediaType, l.digest]),
      [
        [MT.layerGzip, base.layerDigest],
        [MT.layerGzip, r.layerDigest],
      ],
    );
    assert.equal(manifest.annotations["org.opencontainers.image.base.name"], `${reg.host}/base/pg:multi`);
    assert.equal(manifest.annotations["org.opencontainers.image.base.digest"], base.manifestDigest);
    const config = blobJson(out, manifest.config.digest);
    assert.deepEqual(config.rootfs.diff_ids, [base.layerDiffId, r.layerDiffId]);
    assert.equal(config.config.User, "postgres");
    assert.deepEqual(config.config.Entrypoint, ["docker-entrypoint.sh"]);
    assert.deepEqual(config.config.Cmd, ["postgres"]);
    assert.deepEqual(config.config.Env, ["PATH=/usr/local/bin:/usr/bin:/bin", `PGDATA=${IMAGE_PGDATA}`, "LANG=C.UTF-8", `CNDB_SNAPSHOT=${IMAGE_SNAPSHOT_DIR}`]);
    assert.equal(config.config.Labels["org.example.base"], "yes");
    assert.equal(config.config.Labels[LABELS.snapshotId], snap.manifest.id);
    assert.deepEqual(config.history.map((h: { created_by: string }) => h.created_by.split(":")[0]), ["ADD base", "ENV x", "cndb bake"]);
    for (const d of [manifest.config.digest, ...manifest.layers.map((l: { digest: string }) => l.digest)]) assert.ok(existsSync(blobFile(out, d)), d);

    // pushing to another repository of the same registry mounts the base layer instead of uploading it
    const pushed = await pushImage({ layoutDir: out, ref: `${reg.host}/cndb/with-base` });
    assert.deepEqual(pushed.blobs.map((b) => b.how), ["uploaded", "mounted", "uploaded"]);
    // a tag naming another image is moved to this one
    const moved = await pushImage({ layoutDir: out, ref: `${reg.host}/team/db:stable` });
    assert.equal(moved.manifest, "pushed");
    assert.equal((await pullImage(`${reg.host}/team/db:stable`, dir("pull-moved"))).descriptor.digest, r.manifestDigest);
    const pulled = await pullImage(pushed.ref, dir("pull-base"));
    const root = dir("rootfs-base");
    for (const l of pulled.manifest.layers) await unpackLayer(blobFile(dir("pull-base"), l.digest), root);
    assert.equal(readFileSync(path.join(root, "etc/base-marker"), "utf8"), "from the base image\n");
    assert.ok(existsSync(path.join(root, IMAGE_PGDATA, "PG_VERSION")));

    await assert.rejects(
      writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: dir("x-arch"), baseImage: `${reg.host}/base/pg:other-arch` }),
      new RegExp(`--base-image: .* has no linux/${hostArchitecture()} image \\(it has linux/s390x\\)`),
    );
    await assert.rejects(
      writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: dir("x-missing"), baseImage: `${reg.host}/base/nope:1` }),
      /base\/nope:1 not found/,
    );
    assert.equal(existsSync(dir("x-arch")) || existsSync(dir("x-missing")), false);
  });

  it("refuses a bad REF, a REF with a digest, and an unreachable registry, with clear errors", async () => {
    for (const ref of ["", "Team/DB", "host:99999/x", "127.0.0.1:5000/x:bad tag", "x:-tag", "http://127.0.0.1:5000/x", "127.0.0.1:5000//x"]) {
      await assert.rejects(pushImage({ layoutDir: layout, ref }), /--push: invalid image reference .*expected \[registry/, JSON.stringify(ref));
    }
    await assert.rejects(pushImage({ layoutDir: layout, ref: `${reg.host}/x@${built.manifestDigest}` }), /--push: .* carries a digest/);
    const closed = await freePort();
    await assert.rejects(pushImage({ layoutDir: layout, ref: `127.0.0.1:${closed}/x` }), new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${closed} \\(http://127\\.0\\.0\\.1:${closed}\\).*ECONNREFUSED`));
    await assert.rejects(pushImage({ layoutDir: dir("nowhere"), ref: `${reg.host}/x` }), /not an OCI image layout/);
  });

  it("stops a push when its signal aborts (mid-upload), and the tag never appears", async () => {
    const ac = new AbortController();
    const ref = `${reg.host}/cndb/aborted`;
    const err = await pushImage({ layoutDir: layout, ref, chunkSize: 64 * 1024, signal: ac.signal, onProgress: (e) => e.bytesDone > 0 && ac.abort(new Error("SIGTERM")) }).catch((e: Error) => e);
    assert.match(String(err), /SIGTERM/);
    const res = await fetch(`${reg.url}/v2/cndb/aborted/manifests/${snap.manifest.id}`, { headers: { accept: MT.manifest } });
    await res.body?.cancel();
    assert.equal(res.status, 404);
  });
});

describe("bake image: registry authentication", function () {
  this.timeout(60000);
  let snap: TestSnapshot;
  let tmp: string;
  let layout: string;
  const saved = { user: process.env.CNDB_REGISTRY_USER, password: process.env.CNDB_REGISTRY_PASSWORD };
  const setEnv = (user?: string, password?: string) => {
    for (const [k, v] of [["CNDB_REGISTRY_USER", user], ["CNDB_REGISTRY_PASSWORD", password]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "cndb-imgauth-"));
    snap = await makeTestSnapshot({ rows: 10 });
    layout = path.join(tmp, "layout");
    await writeImageLayout({ snapshotDir: snap.dir, manifest: snap.manifest, out: layout });
  });
  afterEach(() => setEnv(saved.user, saved.password));
  after(() => {
    snap?.remove();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("basic auth (htpasswd): no credentials and wrong ones are refused clearly; the right ones from the environment push and pull", async () => {
    const reg = await startTestRegistry({ auth: { kind: "htpasswd", user: "AWS", password: "s3cret-pw" } });
    try {
      setEnv();
      await assert.rejects(pushImage({ layoutDir: layout, ref: `${reg.host}/db` }), /requires authentication .*no credentials.*CNDB_REGISTRY_USER/);
      setEnv("AWS", "wrong-pw");
      const err = await pushImage({ layoutDir: layout, ref: `${reg.host}/db` }).catch((e: Error) => e);
      assert.match(String(err), /authentication failed .*CNDB_REGISTRY_USER\/CNDB_REGISTRY_PASSWORD/);
      assert.doesNotMatch(String(err), /wrong-pw/, "the password is never in an error");
      setEnv("AWS", "s3cret-pw");
      const r = await pushImage({ layoutDir: layout, ref: `${reg.host}/db` });
      const pulled = await pullImage(r.ref, path.join(tmp, "pull-basic"));
      assert.equal(pulled.descriptor.digest, r.manifestDigest);
      setEnv("AWS");
      await assert.rejects(pushImage({ layoutDir: layout, ref: `${reg.host}/db` }), /set both CNDB_REGISTRY_USER and CNDB_REGISTRY_PASSWORD/);
      // ECR's way: GetAuthorizationToken (stubbed: no AWS here) gives AWS:<password>, sent as Basic up front
      setEnv();
      const ecr = { send: async () => ({ $metadata: {}, authorizationData: [{ authorizationToken: Buffer.from("AWS:s3cret-pw").toString("base64") }] }) };
      const auth = await resolveAuth("123456789012.dkr.ecr.eu-west-1.amazonaws.com", { kind: "ecr", client: ecr }, {});
      const client = new RegistryClient({ registry: reg.host, repository: "db" }, { auth, actions: "pull" });
      assert.equal((await client.getManifest(r.tag)).digest, r.manifestDigest);
    } finally {
      await reg.stop();
    }
  });

  it("bearer tokens: fetched from the challenge's realm with the credentials and a pull,push scope", async () => {
    const reg = await startTestRegistry({ auth: { kind: "token", user: "ci", password: "tok-pw" } });
    try {
      await assert.rejects(pushImage({ layoutDir: layout, ref: `${reg.host}/db`, auth: { kind: "anonymous" } }), /requires authentication .*no credentials/);
      await assert.rejects(pushImage({ layoutDir: layout, ref: `${reg.host}/db`, auth: { kind: "basic", username: "ci", password: "nope" } }), /token service .* refused the credentials/);
      reg.tokenRequests.length = 0;
      const r = await pushImage({ layoutDir: layout, ref: `${reg.host}/team/db`, auth: { kind: "basic", username: "ci", password: "tok-pw" } });
      assert.equal(r.tag, snap.manifest.id);
      assert.ok(reg.tokenRequests.length >= 1 && reg.tokenRequests.every((t) => t.authorized));
      assert.ok(reg.tokenRequests[0].scope.includes("repository:team/db:pull,push"), JSON.stringify(reg.tokenRequests));
      const pulled = await pullImage(`${reg.host}/team/db@${r.manifestDigest}`, path.join(tmp, "pull-token"), { auth: { kind: "basic", username: "ci", password: "tok-pw" } });
      assert.equal(pulled.descriptor.digest, r.manifestDigest);
    } finally {
      await reg.stop();
    }
  });
});
