import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { RunAs } from "../pg/run-as";
import { BakeError } from "./errors";

const run = promisify(execFile);

/** Bytes of the regular files under `dir` (symlinks not followed). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.isDirectory()) {
      for (const e of await readdir(p)) await walk(path.join(p, e)).catch(() => undefined);
    } else if (st.isFile()) total += st.size;
  };
  await walk(dir);
  return total;
}

/**
 * Checks --out before any work: it is absent, an empty directory, or a previous snapshot (has
 * snapshot.json), so replacing it cannot destroy anything else.
 */
export function checkOut(out: string): void {
  if (!existsSync(out)) return;
  const st = statSync(out);
  if (!st.isDirectory()) throw new BakeError("option", `--out ${out} exists and is not a directory`);
  const entries = readdirSync(out);
  if (entries.length && !entries.includes("snapshot.json")) {
    throw new BakeError("option", `--out ${out} exists and is not a snapshot (no snapshot.json); refusing to replace it: choose an empty or new directory`);
  }
}

/** The build dir beside `out` (same filesystem, so the final rename is atomic), reachable by `who`. */
export async function makeBuildDir(out: string, who: RunAs | undefined): Promise<string> {
  const parent = path.dirname(out);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new BakeError("option", `--out ${out}: cannot create ${parent}: ${(e as Error).message}`);
  }
  if (who) {
    // PostgreSQL runs as `who`; it must be able to reach the build dir through every parent directory
    try {
      await run("test", ["-x", parent, "-a", "-r", parent], { uid: who.uid, gid: who.gid });
    } catch {
      throw new BakeError("option", `--out ${out}: the PostgreSQL account ${who.name} (uid ${who.uid}) cannot reach ${parent}; choose a directory it can enter (e.g. under /var/tmp or /srv)`);
    }
  }
  try {
    return mkdtempSync(path.join(parent, `.${path.basename(out)}.bake-`));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOSPC") throw new BakeError("no-space", `no space left on device for --out ${out}`);
    throw new BakeError("option", `--out ${out}: cannot create a build directory in ${parent}: ${err.message}`);
  }
}

/**
 * Puts `built` at `out`: an old snapshot is first moved aside into `trash` (same filesystem), then the
 * new one renamed in, then the caller removes `trash`. If the second rename fails the old one goes back.
 */
export function swapInto(built: string, out: string, trash: string): void {
  const hadOld = existsSync(out);
  if (hadOld) renameSync(out, trash);
  try {
    renameSync(built, out);
  } catch (e) {
    if (hadOld) renameSync(trash, out);
    throw e;
  }
}

export function removeTree(p: string): void {
  rmSync(p, { recursive: true, force: true, maxRetries: 3 });
}
