import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Mount points listed in a /proc/<pid>/mountinfo text (field 5, with the kernel's octal escapes undone). */
export function parseMountPoints(mountinfo: string): string[] {
  return mountinfo
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export function isMountPoint(dir: string): boolean {
  return parseMountPoints(readFileSync("/proc/self/mountinfo", "utf8")).includes(path.resolve(dir));
}

/** Root, or a process holding CAP_SYS_ADMIN (bit 21 of CapEff), may mount overlayfs. */
export function canMount(status = safeRead("/proc/self/status"), uid = process.getuid?.()): boolean {
  if (uid === 0) return true;
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return !!m && (BigInt(`0x${m[1]}`) & (1n << 21n)) !== 0n;
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** The kernel overlayfs option string; undefined when a path holds a character the option syntax cannot carry. */
export function overlayOptions(lower: string, upper: string, work: string, extra: string[] = []): string | undefined {
  if ([lower, upper, work].some((p) => /[,:\\\n]/.test(p))) return undefined;
  return [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`, ...extra].join(",");
}

/** First program of that name on PATH. */
export function which(program: string): string | undefined {
  for (const d of (process.env.PATH ?? "").split(path.delimiter)) {
    if (d && existsSync(path.join(d, program))) return path.join(d, program);
  }
  return undefined;
}

/**
 * Unmounts, waiting out EBUSY while the last PostgreSQL processes exit; a lazy unmount as the last
 * resort so the mount never outlives us.
 */
export async function unmount(dir: string, fuse: boolean, log: (line: string) => void, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const fusermount = fuse ? (which("fusermount3") ?? which("fusermount")) : undefined;
  let last = "";
  while (isMountPoint(dir)) {
    try {
      if (fusermount && !(typeof process.getuid === "function" && process.getuid() === 0)) await run(fusermount, ["-u", dir]);
      else await run("umount", [dir]);
    } catch (e) {
      last = ((e as { stderr?: string }).stderr || (e as Error).message).trim();
      if (Date.now() > deadline) {
        log(`unmount ${dir} keeps failing (${last}); detaching it lazily`);
        if (fusermount && process.getuid?.() !== 0) await run(fusermount, ["-u", "-z", dir]);
        else await run("umount", ["-l", dir]);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
