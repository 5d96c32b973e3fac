import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { newSnapshotId, SNAPSHOT_FORMAT } from "../../common/snapshot";
import type { PgBinaries } from "../../runtime/pg/binaries";
import { ReplicaOptionError } from "../../runtime/reader/options";
import { openSnapshot } from "../../runtime/reader/snapshot-dir";
import { warmUp } from "../../runtime/reader/warmup";

const bin: PgBinaries = { bindir: "/pg/bin", major: 15, version: "15.9", path: (p) => `/pg/bin/${p}` };

const manifest = () => ({
  format: SNAPSHOT_FORMAT,
  id: newSnapshotId(),
  createdAt: "2025-01-01T00:00:00Z",
  source: { host: "h", database: "app", serverVersion: "15.9", lsn: "0/1", time: "2025-01-01T00:00:00Z" },
  postgresMajor: 15,
  schemas: ["public"],
  tables: [],
  pgdataBytes: 0,
});

describe("runtime/reader openSnapshot", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cndb-unit-snap-"));
    mkdirSync(path.join(dir, "pgdata"));
    writeFileSync(path.join(dir, "pgdata", "PG_VERSION"), "15\n");
    writeFileSync(path.join(dir, "pgdata", "standby.signal"), "");
    writeFileSync(path.join(dir, "snapshot.json"), JSON.stringify(manifest()));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const fails = (re: RegExp) => (e: unknown) => e instanceof ReplicaOptionError && e.field === "snapshot" && re.test(e.message);

  it("reads a well-formed snapshot dir", () => {
    const s = openSnapshot(dir, bin);
    assert.equal(s.pgdata, path.join(dir, "pgdata"));
    assert.equal(s.manifest.source.database, "app");
  });

  it("says what is wrong with a bad one", () => {
    assert.throws(() => openSnapshot(path.join(dir, "nope"), bin), fails(/nope does not exist/));
    assert.throws(() => openSnapshot(path.join(dir, "snapshot.json"), bin), fails(/not a directory/));
    writeFileSync(path.join(dir, "snapshot.json"), "{ not json");
    assert.throws(() => openSnapshot(dir, bin), fails(/snapshot.json is not valid JSON/));
    writeFileSync(path.join(dir, "snapshot.json"), JSON.stringify({ ...manifest(), id: "latest" }));
    assert.throws(() => openSnapshot(dir, bin), fails(/snapshot.json: id: /));
    writeFileSync(path.join(dir, "snapshot.json"), JSON.stringify({ ...manifest(), postgresMajor: 16 }));
    assert.throws(() => openSnapshot(dir, bin), fails(/PostgreSQL 15 but snapshot.json says postgresMajor 16/));
    writeFileSync(path.join(dir, "snapshot.json"), JSON.stringify(manifest()));
    assert.throws(() => openSnapshot(dir, { ...bin, major: 16, version: "16.4" }), fails(/needs PostgreSQL 15, but the PostgreSQL found is 16.4/));
    writeFileSync(path.join(dir, "pgdata", "postmaster.pid"), "123\n");
    assert.throws(() => openSnapshot(dir, bin), fails(/postmaster.pid exists/));
    rmSync(path.join(dir, "pgdata", "standby.signal"));
    assert.throws(() => openSnapshot(dir, bin), fails(/standby.signal is missing/));
    rmSync(path.join(dir, "pgdata", "PG_VERSION"));
    assert.throws(() => openSnapshot(dir, bin), fails(/not a PostgreSQL data directory/));
    rmSync(path.join(dir, "snapshot.json"));
    assert.throws(() => openSnapshot(dir, bin), fails(/snapshot.json is missing/));
  });
});

describe("runtime/reader warmUp", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cndb-unit-warm-"));
    for (const d of ["base/1", "base/5", "global", "pg_wal", "pg_xact"]) mkdirSync(path.join(dir, d), { recursive: true });
    writeFileSync(path.join(dir, "base/1/1259"), Buffer.alloc(3 << 20, 7));
    writeFileSync(path.join(dir, "base/5/16384"), "abc");
    writeFileSync(path.join(dir, "global/1262"), "0123456789");
    writeFileSync(path.join(dir, "pg_xact/0000"), "x");
    writeFileSync(path.join(dir, "pg_wal/000000010000000000000001"), "not a relation");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("opens every relation and commit-status file, and reads them through with full", async () => {
    const files = await warmUp(dir, "files");
    assert.equal(files.files, 4);
    assert.equal(files.bytes, (3 << 20) + 3 + 10 + 1);
    const full = await warmUp(dir, "full");
    assert.deepEqual([full.files, full.bytes], [4, files.bytes]);
    assert.deepEqual(await warmUp(dir, "none"), { files: 0, bytes: 0, ms: 0 });
    assert.equal(readFileSync(path.join(dir, "base/5/16384"), "utf8"), "abc");
  });

  it("stops when aborted", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop now"));
    await assert.rejects(warmUp(dir, "files", ac.signal), /stop now/);
  });
});
