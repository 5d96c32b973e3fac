import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { READER_ROLE } from "../../common/contract";
import type { SnapshotManifest } from "../../common/snapshot";
import { findPgBinaries } from "../pg/binaries";
import { chownTree, pgRunAs } from "../pg/run-as";
import { makeSocketDir, startServer, type PgServer, type Settings } from "../pg/server";
import { checkPortFree, listenAddresses, resolveOptions, type ReplicaOptions, type WarmupMode } from "./options";
import { checkControlData, openSnapshot } from "./snapshot-dir";
import { warmUp, type WarmupResult } from "./warmup";
import { makeWorkingCopy, type WorkingCopy, type WorkingCopyKind } from "./working-copy";

export { DEFAULT_WARMUP, ReplicaOptionError, WARMUP_MODES, type ReplicaOptions, type WarmupMode } from "./options";
export type { WorkingCopyKind } from "./working-copy";

/** A running read-only replica. */
export interface Replica {
  port: number;
  pid: number;
  snapshotId: string;
  manifest: SnapshotManifest;
  /** From the startReplica call to ready (working copy, warm-up, PostgreSQL up, recovery checked). */
  startupMs: number;
  socketDir: string;
  workingCopy: WorkingCopyKind;
  /** The data dir PostgreSQL runs on. */
  dataDir: string;
  warmup: { mode: WarmupMode } & WarmupResult;
  /** PostgreSQL's log (removed with the working copy). */
  logFile: string;
  /** `ready snapshot=<id> port=<p> startup_ms=<n>` */
  readyLine: string;
  /** PostgreSQL's exit code, once it has exited (asked to or not) and the working copy is gone. */
  exited: Promise<number | null>;
  /** Stops PostgreSQL, unmounts and removes the working copy, the ready file and our socket dir. */
  stop(): Promise<void>;
  /**
   * postgres:// URL of the snapshot's database (user defaults to the reader role): over TCP, but over
   * the Unix socket for the superuser (the baked pg_hba admits it only there) or when listening on none.
   */
  url(user?: string, password?: string): string;
}

/**
 * A permanent hot standby: standby.signal comes from the bake; these make sure nothing in the baked
 * configuration can point it at an upstream or turn it into a primary (command-line settings win over
 * postgresql.conf and postgresql.auto.conf).
 */
export const STANDBY_SETTINGS: Settings = {
  hot_standby: true,
  primary_conninfo: "",
  primary_slot_name: "",
  restore_command: "",
  recovery_target: "",
  recovery_target_name: "",
  recovery_target_time: "",
  recovery_target_xid: "",
  recovery_target_lsn: "",
};

/**
 * Starts PostgreSQL as a read-only replica of a baked snapshot: a working copy of its PGDATA (overlay
 * where we may mount, else fuse-overlayfs, else a copy; or the snapshot itself with inPlace), warm-up,
 * then PostgreSQL; resolves once it accepts queries and is confirmed in recovery.
 * Anything made along the way is removed if the start fails or is aborted.
 */
export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const t0 = performance.now();
  const o = resolveOptions(options);
  const log = o.log;
  o.signal?.throwIfAborted();
  // A ready file left by a replica that was killed (the socket dir outlives a container restart in a
  // pod) must not make this one look ready before it is.
  if (o.readyFile) rmSync(o.readyFile, { force: true });
  const bin = await findPgBinaries();
  const snap = openSnapshot(o.snapshot, bin);
  await checkPortFree(o.listen, o.port);
  const who = pgRunAs();

  const undo: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const f of undo.splice(0).reverse()) {
      try {
        await f();
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`);
      }
    }
  };
  let server: PgServer | undefined;
  try {
    const wc: WorkingCopy = await makeWorkingCopy({ pgdata: snap.pgdata, workDir: o.workDir, mode: o.workingCopy, inPlace: o.inPlace, who, log });
    undo.push(() => wc.remove());
    let runDir = wc.root;
    if (!runDir) {
      const d = mkdtempSync(path.join(os.tmpdir(), "cndb-replica-"));
      chownTree(d, who);
      undo.push(() => rmSync(d, { recursive: true, force: true }));
      runDir = d;
    }
    await checkControlData(bin, wc.dataDir, who);
    o.signal?.throwIfAborted();

    const w = await warmUp(wc.dataDir, o.warmup, o.signal);
    log(`warm-up ${o.warmup}: ${w.files} files, ${Math.round(w.bytes / 1048576)} MiB, ${w.ms} ms`);
    o.signal?.throwIfAborted();

    const socketDir = prepareSocketDir(o.socketDir, who, undo);
    const logFile = path.join(runDir, "postgres.log");
    server = await startServer(bin, {
      dataDir: wc.dataDir,
      port: o.port,
      host: o.listen,
      socketDir,
      logFile,
      settings: { ...STANDBY_SETTINGS, cluster_name: `cndb-${snap.manifest.id}` },
    });
    const srv = server;
    undo.push(() => srv.stop("immediate"));
    const { rows } = await server.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
    if (rows[0]?.r !== true) throw new Error("PostgreSQL started out of recovery (not a standby): refusing to serve it as a read-only replica");
    o.signal?.throwIfAborted();

    const startupMs = Math.round(performance.now() - t0);
    const readyLine = `ready snapshot=${snap.manifest.id} port=${o.port} startup_ms=${startupMs}`;
    if (o.readyFile) {
      writeReadyFile(o.readyFile, readyLine);
      const f = o.readyFile;
      undo.push(() => rmSync(f, { force: true }));
    }

    // From here on, any exit of PostgreSQL (stop(), a crash, a kill) ends in the same cleanup.
    const finish = onceAsync(async () => {
      // Not ready any more from the first moment of stopping.
      if (o.readyFile) rmSync(o.readyFile, { force: true });
      await srv.stop("fast");
      const failures: string[] = [];
      for (const f of undo.splice(0).reverse()) {
        try {
          await f();
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
      if (failures.length) throw new Error(`replica cleanup: ${failures.join("; ")}`);
    });
    const exited = srv.exited.then(async (code) => {
      await finish().catch((e: Error) => log(e.message));
      return code;
    });
    const stop = async () => {
      await finish();
      await exited;
    };
    o.signal?.addEventListener("abort", () => void stop().catch((e: Error) => log(e.message)), { once: true });
    return {
      port: o.port,
      pid: srv.pid,
      snapshotId: snap.manifest.id,
      manifest: snap.manifest,
      startupMs,
      socketDir,
      workingCopy: wc.kind,
      dataDir: wc.dataDir,
      warmup: { mode: o.warmup, ...w },
      logFile,
      readyLine,
      exited,
      stop,
      url: (user = READER_ROLE, password?: string) => replicaUrl(o.listen, o.port, socketDir, snap.manifest.source.database, user, password),
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function prepareSocketDir(dir: string | undefined, who: ReturnType<typeof pgRunAs>, undo: (() => void)[]): string {
  if (!dir) {
    const d = makeSocketDir(who);
    undo.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }
  const abs = path.resolve(dir);
  if (!existsSync(abs)) {
    mkdirSync(abs, { recursive: true, mode: 0o755 });
    chownTree(abs, who);
  }
  return abs;
}

/** Written whole then renamed, so a probe never sees a half-written file. */
function writeReadyFile(file: string, line: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, line + "\n");
  renameSync(tmp, file);
}

export function replicaUrl(listen: string, port: number, socketDir: string, database: string, user: string, password?: string): string {
  const auth = encodeURIComponent(user) + (password === undefined ? "" : `:${encodeURIComponent(password)}`);
  const first = user === SUPERUSER ? undefined : listenAddresses(listen)[0];
  if (first === undefined) return `postgres://${auth}@localhost:${port}/${encodeURIComponent(database)}?host=${encodeURIComponent(socketDir)}`;
  const host = first === "*" || first === "0.0.0.0" ? "127.0.0.1" : first === "::" ? "[::1]" : first.includes(":") ? `[${first}]` : first;
  return `postgres://${auth}@${host}:${port}/${encodeURIComponent(database)}`;
}

/** The baked cluster's superuser (initdb -U, what the bake's pg_hba trusts on the socket). */
const SUPERUSER = "postgres";

function onceAsync(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}
