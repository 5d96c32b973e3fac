import { execFileSync } from "node:child_process";
import { chownSync, lstatSync, readdirSync } from "node:fs";
import path from "node:path";

/** The account PostgreSQL's programs run as. PostgreSQL refuses to run as root. */
export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/**
 * When we are root (a dev box, CI), drop to an unprivileged account: CNDB_PG_USER, else `postgres`,
 * else `nobody`. Otherwise (the reader container, a normal user) run as ourselves.
 */
export function pgRunAs(): RunAs | undefined {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined;
  for (const name of [process.env.CNDB_PG_USER, "postgres", "nobody"]) {
    if (!name) continue;
    try {
      const uid = Number(execFileSync("id", ["-u", name]).toString().trim());
      const gid = Number(execFileSync("id", ["-g", name]).toString().trim());
      if (uid !== 0) return { uid, gid, name };
    } catch {
      // no such account: try the next
    }
  }
  throw new Error("running as root and no unprivileged account (CNDB_PG_USER, postgres, nobody) exists for PostgreSQL");
}

/** Hands a directory tree to the PostgreSQL account (no-op when not root). */
export function chownTree(dir: string, who: RunAs | undefined): void {
  if (!who) return;
  const walk = (p: string) => {
    chownSync(p, who.uid, who.gid);
    if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}

/** spawn/execFile options that run the child as `who`. */
export function spawnIdentity(who: RunAs | undefined): { uid?: number; gid?: number } {
  return who ? { uid: who.uid, gid: who.gid } : {};
}
