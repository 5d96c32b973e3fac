import { execFile, spawnSync } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { chownTree, pgRunAs, spawnIdentity } from "../../runtime/pg/run-as";
import { isInterrupted, onCleanup } from "./cleanup";

export interface RunResult {
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to completion, bounded by timeoutMs; rejects with its stderr on failure. */
export function run(
  file: string,
  args: string[],
  opts: { asPostgres?: boolean; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const who = opts.asPostgres ? pgRunAs() : undefined;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        ...spawnIdentity(who),
        cwd: opts.cwd,
        env: { ...process.env, LC_ALL: "C.UTF-8", ...opts.env },
        timeout: opts.timeoutMs ?? 30 * 60_000,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const ms = performance.now() - t0;
        if (err) {
          const detail = (stderr || err.message).toString().trim().split("\n").slice(-8).join("\n");
          reject(new Error(`${path.basename(file)} ${args.join(" ")} failed: ${detail}`));
        } else resolve({ stdout: stdout.toString(), stderr: stderr.toString(), ms });
      },
    );
  });
}

/** Runs one PostgreSQL program (pg_dump, pgbench, ...) as the PostgreSQL account. */
export async function runPg(program: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const bin = await findPgBinaries();
  return run(bin.path(program), args, { ...opts, asPostgres: true });
}

const owned = new Map<string, () => Promise<void>>();

/**
 * A fresh directory under root, owned by the PostgreSQL account (so its programs can write there).
 * Removed by removeDir, or on Ctrl-C after everything registered later (servers, mounts) is undone.
 */
export function makeDir(root: string, prefix: string): string {
  if (isInterrupted()) throw new Error("interrupted");
  const dir = mkdtempSync(path.join(root, prefix));
  chownTree(dir, pgRunAs());
  owned.set(dir, onCleanup(`dir ${dir}`, () => rmTree(dir)));
  return dir;
}

/** rm -rf, retrying while a process still writing there (an interrupted pg_restore) races it. */
export function removeDir(dir: string | undefined): void {
  if (!dir) return;
  const undo = owned.get(dir);
  owned.delete(dir);
  rmTree(dir);
  if (undo) void undo(); // unregisters (the tree is already gone)
}

function rmTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (e) {
    // Interrupted mid-start, a replica's overlay may still be mounted in there: detach, then retry.
    const mounts = mountsUnder(dir);
    if (!mounts.length) throw e;
    for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

function mountsUnder(dir: string): string[] {
  const prefix = path.resolve(dir) + "/";
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => !!m)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m.startsWith(prefix));
}

/** Sum of the apparent sizes of every regular file under dir (what a copy or a transfer moves). */
export function treeBytes(dir: string): number {
  let total = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
    else if (st.isFile()) total += st.size;
  };
  walk(dir);
  return total;
}

/**
 * Blocks allocated under dir (du), staying on dir's file system (a mounted overlay inside is not
 * counted: its upper dir is). Shared reflinked extents count in full, holes don't.
 */
export async function diskBytes(dir: string): Promise<number> {
  const { stdout } = await run("du", ["-x", "-s", "-B1", dir]);
  return Number(stdout.split(/\s/)[0]);
}

export function defaultWorkRoot(): string {
  return process.env.CNDB_BENCH_DIR ?? (os.platform() === "linux" ? "/var/tmp" : os.tmpdir());
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
