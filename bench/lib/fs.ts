import { closeSync, mkdirSync, openSync, statfsSync } from "node:fs";
import path from "node:path";
import { chownTree, pgRunAs } from "../../runtime/pg/run-as";
import { onCleanup } from "./cleanup";
import { makeDir, removeDir, run, sleep } from "./proc";

/** Bytes in use on the file system holding dir (df): what reflinked copies really allocate. */
export function usedBytes(dir: string): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

async function umount(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await run("umount", [dir]);
      return;
    } catch (e) {
      if (i >= 20) {
        await run("umount", ["-l", dir]).catch(() => undefined);
        throw e;
      }
      await sleep(100);
    }
  }
}

export interface Mounted {
  dir: string;
  /** Unmounts (and removes what mount() made). Idempotent. */
  unmount(): Promise<void>;
}

/**
 * A loop-mounted XFS with reflink=1 in a sparse file under root. Overlay copy-up on it clones
 * extents instead of copying data (lower, upper and work dirs must all be on it).
 */
export async function mountXfsLoop(root: string, sizeBytes: number): Promise<Mounted> {
  const dir = makeDir(root, "cndb-bench-xfs-");
  const image = path.join(dir, "xfs.img");
  const mnt = path.join(dir, "mnt");
  mkdirSync(mnt);
  let mounted = false;
  const unmount = onCleanup(`xfs loop ${mnt}`, async () => {
    if (mounted) await umount(mnt);
    removeDir(dir);
  });
  try {
    const fd = openSync(image, "w");
    closeSync(fd);
    await run("truncate", ["-s", String(Math.ceil(sizeBytes / 2 ** 20)) + "M", image]);
    await run("mkfs.xfs", ["-q", "-f", "-m", "reflink=1", image]);
    await run("mount", ["-o", "loop", image, mnt]);
    mounted = true;
    chownTree(mnt, pgRunAs());
    return { dir: mnt, unmount };
  } catch (e) {
    await unmount();
    throw e;
  }
}

/** Why an XFS loop file system cannot be made here, or undefined when it can (as far as we can tell up front). */
export async function xfsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "needs root (mount -o loop)";
  try {
    await run("mkfs.xfs", ["-V"]);
  } catch {
    return "mkfs.xfs is not installed (apt-get install xfsprogs)";
  }
  return undefined;
}

export interface Overlay extends Mounted {
  upper: string;
  /** The file system bytes used before mounting (for a df delta). */
  usedBefore: number;
}

/** A kernel overlay mount: lower read-only, upper/work fresh under root (same file system as root). */
export async function mountOverlay(lower: string, root: string): Promise<Overlay> {
  const dir = makeDir(root, "cndb-bench-ovl-");
  const upper = path.join(dir, "upper");
  const work = path.join(dir, "work");
  const merged = path.join(dir, "merged");
  for (const d of [upper, work, merged]) mkdirSync(d, { mode: 0o700 });
  chownTree(dir, pgRunAs());
  let mounted = false;
  const unmount = onCleanup(`overlay ${merged}`, async () => {
    if (mounted) await umount(merged);
    removeDir(dir);
  });
  try {
    const usedBefore = usedBytes(dir);
    await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    mounted = true;
    return { dir: merged, upper, usedBefore, unmount };
  } catch (e) {
    await unmount();
    throw e;
  }
}
