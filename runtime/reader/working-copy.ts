import { execFile } from "node:child_process";
import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { spawnIdentity, type RunAs } from "../pg/run-as";
import { canMount, isMountPoint, overlayOptions, unmount, which } from "./mounts";
import { ReplicaOptionError, type WorkingCopyMode } from "./options";

const run = promisify(execFile);

export type WorkingCopyKind = "overlay" | "fuse-overlayfs" | "copy" | "in-place";

/** The data dir PostgreSQL runs on: a writable view of the snapshot's PGDATA that leaves the snapshot untouched. */
export interface WorkingCopy {
  kind: WorkingCopyKind;
  dataDir: string;
  /** Our own directory (upper, work, mount point, log); absent in place. */
  root?: string;
  /** Unmounts and deletes everything made here; the snapshot stays as it was. Idempotent. */
  remove(): Promise<void>;
}

export interface WorkingCopyArgs {
  pgdata: string;
  workDir?: string;
  mode: WorkingCopyMode;
  inPlace: boolean;
  who: RunAs | undefined;
  log: (line: string) => void;
}

export async function makeWorkingCopy(a: WorkingCopyArgs): Promise<WorkingCopy> {
  if (a.inPlace) return inPlace(a);
  const base = path.resolve(a.workDir ?? os.tmpdir());
  try {
    mkdirSync(base, { recursive: true });
  } catch (e) {
    throw new ReplicaOptionError("workDir", `cannot create ${base}: ${(e as Error).message}`);
  }
  if (statSync(base).dev !== statSync(a.pgdata).dev) {
    a.log(`work dir ${base} is on another file system than the snapshot: copy-up copies files instead of cloning them`);
  }
  let root: string;
  try {
    root = mkdtempSync(path.join(base, "cndb-replica-"));
  } catch (e) {
    throw new ReplicaOptionError("workDir", `cannot write in ${base}: ${(e as Error).message}`);
  }
  // PostgreSQL's account must get through our directory to its data dir (and write its log here).
  if (a.who) {
    chownSync(root, a.who.uid, a.who.gid);
    try {
      await run("test", ["-x", root], spawnIdentity(a.who));
    } catch {
      rmSync(root, { recursive: true, force: true });
      throw new ReplicaOptionError("workDir", `PostgreSQL's account ${a.who.name} cannot reach ${base}: make it and its parents searchable (chmod o+x) or pick another`);
    }
  }
  const dataDir = path.join(root, "pgdata");
  let mounted: "overlay" | "fuse-overlayfs" | undefined;
  const remove = once(async () => {
    if (mounted) await unmount(dataDir, mounted === "fuse-overlayfs", a.log);
    // Never delete through a live mount: that would be deleting through the merged view.
    if (isMountPoint(dataDir)) throw new Error(`${dataDir} is still mounted; not removing ${root}`);
    rmSync(root, { recursive: true, force: true });
  });
  try {
    const order: WorkingCopyKind[] = a.mode === "auto" ? ["overlay", "fuse-overlayfs", "copy"] : [a.mode as WorkingCopyKind];
    for (const kind of order) {
      const why = kind === "copy" ? undefined : await tryMount(kind, a, root, dataDir);
      if (why === undefined) {
        if (kind === "copy") await copy(a, dataDir);
        else mounted = kind as "overlay" | "fuse-overlayfs";
        a.log(`working copy: ${kind} at ${dataDir}`);
        return { kind, dataDir, root, remove };
      }
      if (a.mode !== "auto") throw new Error(`working copy ${kind} is not possible: ${why}`);
      a.log(`working copy: no ${kind} (${why})`);
    }
    throw new Error("unreachable");
  } catch (e) {
    await remove().catch((c: Error) => a.log(`cleanup after a failed start: ${c.message}`));
    throw e;
  }
}

/** Mounts an overlay (kernel or FUSE) on dataDir; returns why not when it cannot. */
async function tryMount(kind: WorkingCopyKind, a: WorkingCopyArgs, root: string, dataDir: string): Promise<string | undefined> {
  const upper = path.join(root, `${kind}-upper`);
  const work = path.join(root, `${kind}-work`);
  const fuse = kind === "fuse-overlayfs";
  const program = fuse ? which("fuse-overlayfs") : "mount";
  if (!program) return "fuse-overlayfs is not installed";
  if (!fuse && !canMount()) return "not root and no CAP_SYS_ADMIN";
  // The overlay's root directory takes the upper dir's owner and mode: PostgreSQL wants its own, 0700.
  mkdirSync(upper, { mode: 0o700 });
  mkdirSync(work, { mode: 0o700 });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (a.who) for (const d of [upper, dataDir]) chownSync(d, a.who.uid, a.who.gid);
  // Files owned by another uid than PostgreSQL's (an image extracted elsewhere) need a chown, which
  // metacopy keeps a metadata-only copy-up.
  const chown = a.who !== undefined && ownerDiffers(a.pgdata, a.who);
  const extra = [...(chown && !fuse ? ["metacopy=on"] : []), ...(fuse && a.who ? ["allow_other"] : [])];
  // volatile (Linux 5.10+): copy-up skips its fsyncs; the upper dir is thrown away on stop anyway.
  const attempts = fuse ? [extra] : [[...extra, "volatile"], extra];
  let failure = "";
  for (const opts of attempts) {
    const options = overlayOptions(a.pgdata, upper, work, opts);
    if (!options) return "a path holds ',', ':' or '\\', which overlay mount options cannot carry";
    try {
      if (fuse) await run(program, ["-o", options, dataDir]);
      else await run(program, ["-t", "overlay", "overlay", "-o", options, dataDir]);
      failure = "";
      break;
    } catch (e) {
      failure = (((e as { stderr?: string }).stderr || (e as Error).message).trim() || "mount failed").split("\n")[0];
      // a failed attempt may leave the work dir's internals behind
      for (const d of [upper, work]) {
        rmSync(d, { recursive: true, force: true });
        mkdirSync(d, { mode: 0o700 });
      }
      if (a.who) chownSync(upper, a.who.uid, a.who.gid);
    }
  }
  if (failure) {
    rmSync(upper, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    return failure;
  }
  if (chown) {
    try {
      chownAll(dataDir, a.who!);
    } catch (e) {
      await unmount(dataDir, fuse, a.log);
      return `chown inside the overlay failed: ${(e as Error).message}`;
    }
  }
  return undefined;
}

/** A full copy; cp clones file extents where the file system can (XFS with reflink, btrfs). */
async function copy(a: WorkingCopyArgs, dataDir: string): Promise<void> {
  rmSync(dataDir, { recursive: true, force: true });
  try {
    await run("cp", ["-a", "--reflink=auto", a.pgdata, dataDir]);
  } catch (e) {
    throw new Error(`copying ${a.pgdata} to ${dataDir} failed: ${((e as { stderr?: string }).stderr || (e as Error).message).trim()}`);
  }
  if (a.who && ownerDiffers(dataDir, a.who)) chownAll(dataDir, a.who);
  chmodSync(dataDir, 0o700);
}

function inPlace(a: WorkingCopyArgs): WorkingCopy {
  const uid = a.who?.uid ?? process.getuid?.();
  const st = statSync(a.pgdata);
  if (uid !== undefined && st.uid !== uid) {
    throw new ReplicaOptionError("inPlace", `${a.pgdata} is owned by uid ${st.uid}, but PostgreSQL would run as uid ${uid}; it must own its data dir`);
  }
  if ((st.mode & 0o027) !== 0) {
    throw new ReplicaOptionError("inPlace", `${a.pgdata} has mode ${(st.mode & 0o777).toString(8)}; PostgreSQL needs 0700 or 0750`);
  }
  a.log(`working copy: in place on ${a.pgdata}`);
  return { kind: "in-place", dataDir: a.pgdata, remove: async () => undefined };
}

function ownerDiffers(dir: string, who: RunAs): boolean {
  return statSync(dir).uid !== who.uid || statSync(path.join(dir, "PG_VERSION")).uid !== who.uid;
}

/** chown -R that never follows a symlink (pg_tblspc links point outside the working copy). */
function chownAll(p: string, who: RunAs): void {
  lchownSync(p, who.uid, who.gid);
  const st = lstatSync(p);
  if (st.isDirectory()) for (const e of readdirSync(p)) chownAll(path.join(p, e), who);
}

function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}
