/**
 * The bake: one consistent snapshot of the master -> a verified, frozen, read-only PGDATA (+ manifest,
 * + optionally an OCI image). Built beside `out` and renamed into place only once verified.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { RUNTIME_GID, RUNTIME_UID } from "../../common/contract";
import { newSnapshotId, SNAPSHOT_FORMAT, type SnapshotManifest, type TableEntry } from "../../common/snapshot";
import { findPgBinaries, MissingPostgresError, type PgBinaries } from "../pg/binaries";
import { chownTree, pgRunAs } from "../pg/run-as";
import type { PgServer } from "../pg/server";
import { CHECKSUM_SESSION, largeObjectsSum, sequenceStates, snapshotSums } from "./checksum";
import { loadDatabaseInfo } from "./database";
import { runDump } from "./dump";
import { abortError, asBakeError, BakeError, throwIfAborted, type BakeErrorCode } from "./errors";
import { checkOut, dirBytes, makeBuildDir, removeTree, swapInto } from "./files";
import { pushImage, writeImageLayout } from "./image";
import { quoteExact } from "./patterns";
import { ProgressReporter, type BakeProgress } from "./progress";
import { finishDatabase, freeze, prepareCluster, runRestore, sealForStandby, type RestoreContext } from "./restore";
import { fetchDbSecret, mergeSecret } from "./secret";
import { loadCatalog, selectRelations, type Rel, type Selection } from "./select";
import { checkDumpVersion, connectSource, parseSource, programMajor, sourceError, type Source } from "./source";
import { startBakedSnapshot, verifyReplica, type Expected } from "./verify";

export { BakeError, type BakeErrorCode } from "./errors";
export { formatProgress, type BakePhase, type BakeProgress } from "./progress";
export { startBakedSnapshot, type StartBakedOptions } from "./verify";

export interface BakeOptions {
  /** postgres:// URL of the master (credentials may come from sourceSecretArn instead). */
  source: string;
  /** The snapshot directory to create or replace: `<out>/pgdata`, `<out>/snapshot.json`, `<out>/image/`. */
  out: string;
  /** Parallel dump/restore/vacuum jobs. @default the CPU count */
  jobs?: number;
  /** Schema name patterns to bake. @default every user schema */
  schemas?: string[];
  /** Table patterns (`[schema.]name`, psql rules) to bake. @default all */
  includeTables?: string[];
  excludeTables?: string[];
  /** Also write an OCI image layout to `<out>/image`. */
  image?: boolean;
  /** Registry reference of the PostgreSQL base image (implies image). @default none: the data layer alone */
  baseImage?: string;
  /** Push the image to this `registry/repository[:tag]` (tag defaults to the snapshot id). Implies image. */
  push?: string;
  /** Name of the environment variable holding the reader role's password. @default none: local/loopback only */
  readerPasswordEnv?: string;
  /** Secrets Manager ARN of {username, password} for the master. */
  sourceSecretArn?: string;
  onProgress?: (e: BakeProgress) => void;
  signal?: AbortSignal;
}

export interface BakeResult {
  dir: string;
  manifest: SnapshotManifest;
  elapsedMs: number;
}

const KIND = { r: "table", p: "partitioned", m: "matview" } as const;

/** Checks options before anything is touched; errors name the option. */
function checkOptions(o: BakeOptions): { jobs: number; readerPassword?: string } {
  if (!o.out) throw new BakeError("option", "--out is required: the snapshot directory to write");
  if (!o.source && !o.sourceSecretArn) throw new BakeError("option", "--source is required: postgres://user:password@host:port/database");
  const jobs = o.jobs ?? (os.availableParallelism?.() ?? os.cpus().length);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new BakeError("option", `--jobs ${o.jobs}: expected a whole number from 1 to 64`);
  let readerPassword: string | undefined;
  if (o.readerPasswordEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.readerPasswordEnv)) throw new BakeError("option", `--reader-password-env ${JSON.stringify(o.readerPasswordEnv)}: expected an environment variable name`);
    readerPassword = process.env[o.readerPasswordEnv];
    if (!readerPassword) throw new BakeError("option", `--reader-password-env ${o.readerPasswordEnv}: that environment variable is not set or is empty`);
  }
  for (const [name, list] of [["--schema", o.schemas], ["--include-table", o.includeTables], ["--exclude-table", o.excludeTables]] as const) {
    for (const p of list ?? []) if (typeof p !== "string" || !p.trim()) throw new BakeError("option", `${name}: empty pattern`);
  }
  return { jobs, readerPassword };
}

export async function bake(opts: BakeOptions): Promise<BakeResult> {
  const started = Date.now();
  const userSignal = opts.signal;
  throwIfAborted(userSignal);
  const { jobs, readerPassword } = checkOptions(opts);
  const out = path.resolve(opts.out);
  checkOut(out);
  const progress = new ProgressReporter(opts.onProgress);
  // internal: one failing branch (dump vs checksums) stops the other; the caller's signal stops all
  const ac = new AbortController();
  const onUserAbort = () => ac.abort(userSignal!.reason);
  userSignal?.addEventListener("abort", onUserAbort, { once: true });
  const signal = ac.signal;
  const servers: PgServer[] = [];
  // a running VACUUM or checksum query would hold up the abort: stop the servers under it right away
  signal.addEventListener("abort", () => servers.forEach((s) => void s.stop("immediate").catch(() => undefined)), { once: true });
  let build: string | undefined;
  let master: pg.Client | undefined;
  let phase: { code: BakeErrorCode; where: string } = { code: "option", where: "connecting to the master" };
  try {
    progress.start("connect");
    let bin: PgBinaries;
    try {
      bin = await findPgBinaries();
    } catch (e) {
      if (e instanceof MissingPostgresError) throw new BakeError("binaries", e.message);
      throw e;
    }
    const dumpVersion = await programMajor(bin.path("pg_dump"));
    const sourceUrl = opts.sourceSecretArn ? mergeSecret(opts.source || undefined, await fetchDbSecret(opts.sourceSecretArn, signal)) : opts.source;
    const source = parseSource(sourceUrl);
    master = await connectSource(source);
    const stopMaster = cancelOnAbort(master, source, signal);
    phase = { code: "dump", where: "reading the master" };
    const ver = await master.query<{ v: string; n: string }>("SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n");
    const serverVersionNum = Number(ver.rows[0].n);
    checkDumpVersion(dumpVersion.major, dumpVersion.version, serverVersionNum, ver.rows[0].v);
    checkDumpVersion(bin.major, bin.version, serverVersionNum, ver.rows[0].v); // the restore server too

    // 1. the snapshot: everything below reads the master as of this one moment
    await master.query(CHECKSUM_SESSION);
    await master.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const snap = await master.query<{ snapshot: string; lsn: string; time: Date }>(
      `SELECT pg_catalog.pg_export_snapshot() AS snapshot, now() AS time,
              (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END)::text AS lsn`,
    );
    const id = newSnapshotId();
    const { snapshot, lsn, time } = snap.rows[0];
    const db = await loadDatabaseInfo(master, serverVersionNum);
    if (db.name === "template0" || db.name === "template1") throw new BakeError("option", `--source names database ${db.name}, a template: bake an application database`);
    const sel = selectRelations(await loadCatalog(master), opts);
    for (const n of sel.notes) progress.note(n);
    const data = sel.kept.filter((r): r is Rel & { kind: "r" | "p" | "m" } => r.kind === "r" || r.kind === "p" || r.kind === "m");
    await lockTables(master, data.filter((r) => r.kind !== "m"));
    const leafTables = data.filter((r) => r.kind === "r");
    const dumpTotal = leafTables.reduce((a, r) => a + r.bytes, 0);
    progress.end({ message: `${source.display}, PostgreSQL ${ver.rows[0].v}, LSN ${lsn}, ${data.length} tables in ${sel.schemas.length} schemas` });

    const who = pgRunAs();
    build = await makeBuildDir(out, who);
    const work = path.join(build, "work");
    const snapDir = path.join(build, "snapshot");
    const pgdata = path.join(snapDir, "pgdata");
    const dumpDir = path.join(work, "dump");
    mkdirSync(work);
    mkdirSync(snapDir);
    chownTree(build, who);

    // pg_dump on the exported snapshot and the master-side checksums in the snapshot's own transaction;
    // meanwhile initdb and the restore server (they need nothing from the dump)
    phase = { code: "dump", where: "dumping the master" };
    const ctx: RestoreContext = { bin, pgdata, workDir: work, jobs, signal, track: (s) => servers.push(s) };
    progress.start("dump", { tablesDone: 0, tablesTotal: leafTables.length, bytesDone: 0, bytesTotal: dumpTotal });
    let firstError: unknown;
    const fail = (e: unknown): never => {
      firstError ??= e;
      ac.abort(e);
      throw e;
    };
    const seqBefore = await keptSequences(master, sel, signal);
    const [dumped, summed, prepared] = await Promise.allSettled([
      runDump({
        bin, source, snapshot, dumpDir, jobs, selection: sel, signal,
        onProgress: (t, b) => progress.progress({ tablesDone: t, tablesTotal: leafTables.length, bytesDone: b, bytesTotal: dumpTotal }),
      }).catch(fail),
      masterSums(master, source, snapshot, data, jobs, signal).catch((e) => fail(sourceError(e, source))),
      prepareCluster(ctx, db).catch((e) => fail(asBakeError(e, "restore", "preparing the new cluster"))),
    ]);
    if (dumped.status === "rejected" || summed.status === "rejected" || prepared.status === "rejected") throw firstError;
    const seqAfter = await keptSequences(master, sel, signal);
    const expected: Expected = { ...summed.value, sequences: new Map() };
    for (const [name, before] of seqBefore) expected.sequences.set(name, { before, after: seqAfter.get(name) ?? before });
    const server = prepared.value;
    await master.query("COMMIT");
    stopMaster();
    await master.end();
    master = undefined;
    // the dump's own size: the tables' size on the master (the total above) was only a yardstick for progress
    progress.end({ tablesDone: leafTables.length, tablesTotal: leafTables.length, bytesDone: await dirBytes(dumpDir) });

    // 2. restore into the fresh PGDATA
    phase = { code: "restore", where: "restoring" };
    progress.start("restore");
    await runRestore(ctx, server, dumpDir, db.name, (t, tt, b, bt) => progress.progress({ tablesDone: t, tablesTotal: tt, bytesDone: b, bytesTotal: bt }, t === tt));
    throwIfAborted(signal);
    await finishDatabase(ctx, server, db, sel.schemas, readerPassword);
    progress.end();
    removeTree(dumpDir);

    // 3. freeze, checkpoint, final clean stop with wal_level=replica, standby configuration
    phase = { code: "restore", where: "freezing" };
    progress.start("freeze");
    await freeze(ctx, server, db.name, (t, tt) => progress.progress({ tablesDone: t, tablesTotal: tt }));
    throwIfAborted(signal);
    await sealForStandby(ctx, readerPassword !== undefined);
    progress.end();

    // 4. verify on the baked PGDATA started as the standby it will be
    phase = { code: "verify", where: "verifying" };
    progress.start("verify", { tablesDone: 0, tablesTotal: data.length });
    const standby = await startBakedSnapshot(bin, pgdata, { logFile: path.join(work, "verify.log") });
    servers.push(standby);
    const verified = await verifyReplica(standby, db.name, expected, sel.schemas, signal, (t) => progress.progress({ tablesDone: t, tablesTotal: data.length }), jobs);
    await standby.stop("fast");
    if ((await standby.exited) !== 0) throw new BakeError("verify", `the verification standby did not stop cleanly:\n${standby.logTail()}`);
    progress.end({ tablesDone: data.length, tablesTotal: data.length });

    // 5. the manifest
    const tables: TableEntry[] = expected.tables.map((t) => ({
      schema: t.schema,
      name: t.name,
      kind: KIND[t.kind],
      rows: t.rows,
      checksum: t.checksum,
      bytes: verified.bytes.get(`${t.schema}.${t.name}`) ?? 0,
    }));
    const manifest: SnapshotManifest = {
      format: SNAPSHOT_FORMAT,
      id,
      createdAt: new Date().toISOString(),
      source: { host: source.host, database: db.name, serverVersion: ver.rows[0].v, lsn, time: new Date(time).toISOString() },
      postgresMajor: bin.major,
      schemas: sel.schemas,
      tables,
      pgdataBytes: await dirBytes(pgdata),
    };
    writeManifest(snapDir, manifest);

    // 6. the image (built by ./image), pushed when asked
    if (opts.image || opts.push || opts.baseImage) {
      phase = { code: "image", where: "writing the image" };
      progress.start("image");
      const img = await writeImageLayout({
        snapshotDir: snapDir,
        manifest,
        baseImage: opts.baseImage,
        out: path.join(snapDir, "image"),
        // on a base image the data belongs to its postgres account, the uid the fleet runs as
        owner: opts.baseImage ? { uid: RUNTIME_UID, gid: RUNTIME_GID } : undefined,
        signal,
        onProgress: (e) => progress.progress({ bytesDone: e.bytesDone, bytesTotal: e.bytesTotal, message: e.phase }),
      });
      manifest.image = { manifestDigest: img.manifestDigest, layerDigest: img.layerDigest };
      progress.end({ message: `manifest ${img.manifestDigest}` });
      if (opts.push) {
        phase = { code: "image", where: "pushing the image" };
        progress.start("push");
        const pushed = await pushImage({
          layoutDir: path.join(snapDir, "image"),
          ref: opts.push,
          signal,
          onProgress: (e) => progress.progress({ bytesDone: e.bytesDone, bytesTotal: e.bytesTotal }),
        });
        manifest.image.ref = pushed.ref;
        progress.end({ message: pushed.ref });
      }
      writeManifest(snapDir, manifest);
    }

    throwIfAborted(signal);
    phase = { code: "option", where: `moving the snapshot to ${out}` };
    progress.start("install");
    swapInto(snapDir, out, path.join(build, "previous"));
    removeTree(build);
    build = undefined;
    progress.end();
    return { dir: out, manifest, elapsedMs: Date.now() - started };
  } catch (e) {
    ac.abort(e);
    if (userSignal?.aborted) throw abortError(userSignal);
    throw asBakeError(e, phase.code, phase.where);
  } finally {
    userSignal?.removeEventListener("abort", onUserAbort);
    await master?.end().catch(() => undefined);
    for (const s of servers) await s.stop("immediate").catch(() => undefined);
    if (build) removeTree(build);
  }
}

function writeManifest(dir: string, m: SnapshotManifest): void {
  writeFileSync(path.join(dir, "snapshot.json"), JSON.stringify(m, null, 2) + "\n", { mode: 0o644 });
}

/** ACCESS SHARE locks on the baked tables right away: no DDL can change them until the dump is done. */
async function lockTables(c: pg.ClientBase, rels: Rel[]): Promise<void> {
  for (let i = 0; i < rels.length; i += 500) {
    const names = rels.slice(i, i + 500).map((r) => quoteExact(r.schema, r.name));
    if (names.length) await c.query(`LOCK TABLE ${names.join(", ")} IN ACCESS SHARE MODE`);
  }
}

/** States of the sequences the bake keeps (those of kept tables, and free-standing ones). */
async function keptSequences(c: pg.ClientBase, sel: Selection, signal: AbortSignal): Promise<Map<string, string>> {
  const kept = new Set(sel.kept.map((r) => r.oid));
  const out = new Map<string, string>();
  for (const [name, s] of await sequenceStates(c, sel.schemas, signal)) if (s.owner === undefined || kept.has(s.owner)) out.set(name, s.state);
  return out;
}

/** Counts, checksums (N sessions at a time, see snapshotSums) and large objects on the master, inside the snapshot. */
async function masterSums(c: pg.ClientBase, source: Source, snapshot: string, data: Array<Rel & { kind: "r" | "p" | "m" }>, jobs: number, signal: AbortSignal): Promise<Omit<Expected, "sequences">> {
  const rels = data.map((r) => ({ schema: r.schema, name: r.name, kind: r.kind, unpopulated: r.unpopulated, bytes: r.bytes }));
  const tables = await snapshotSums(c, () => connectSource(source), snapshot, rels, jobs, signal);
  return { tables, largeObjects: await largeObjectsSum(c) };
}

/** On abort, cancels the master session's running query so the bake does not wait for it. */
function cancelOnAbort(c: pg.Client, source: Source, signal: AbortSignal): () => void {
  const pid = (c as unknown as { processID?: number }).processID;
  const onAbort = () => {
    void (async () => {
      if (!pid) return;
      try {
        const k = await connectSource(source);
        await k.query("SELECT pg_catalog.pg_cancel_backend($1)", [pid]);
        await k.end();
      } catch {
        // best effort: closing the connection ends it too
      }
    })();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}
