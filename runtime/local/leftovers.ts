import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { LocalPaths } from "./state";

/** True if a process with this pid exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid of a `local up` already running on this state dir, if any. */
export function runningUp(p: LocalPaths): number | undefined {
  if (!existsSync(p.pidFile)) return undefined;
  const pid = Number(readFileSync(p.pidFile, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : undefined;
}

/** Mount points under `dir`, deepest first (from /proc/self/mountinfo, field 5, octal escapes decoded). */
export function mountsUnder(dir: string): string[] {
  if (!existsSync("/proc/self/mountinfo")) return [];
  const root = path.resolve(dir) + "/";
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4]?.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
    .filter((m): m is string => !!m && (m + "/").startsWith(root))
    .sort((a, b) => b.length - a.length);
}

/**
 * After a `local up` that was killed (-9, power loss): its replicas' overlay mounts and working copies
 * are still there. Unmount and remove them before starting new ones. The master cleans up after itself.
 */
export function clearLeftovers(p: LocalPaths, log: (line: string) => void): void {
  for (const m of mountsUnder(p.replicas)) {
    const r = spawnSync("umount", [m]);
    if (r.status !== 0) spawnSync("umount", ["-l", m]);
    log(`unmounted a leftover replica mount ${m}`);
  }
  rmSync(p.replicas, { recursive: true, force: true });
  rmSync(p.pidFile, { force: true });
}
