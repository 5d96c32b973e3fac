import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { parseMountPoints } from "../../runtime/reader/mounts";

/** One digest over every entry of a tree: path, type, mode, owner, size, mtime and content. */
export function hashTree(root: string): string {
  const h = createHash("sha256");
  const walk = (rel: string) => {
    const p = path.join(root, rel);
    const st = lstatSync(p);
    h.update(`${rel}\0${st.mode}\0${st.uid}:${st.gid}\0${st.size}\0${st.mtimeMs}\0`);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(path.join(rel, e));
    else if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else h.update(readFileSync(p));
  };
  walk(".");
  return h.digest("hex");
}

/** Mount points at or under dir. */
export function mountsUnder(dir: string): string[] {
  return parseMountPoints(readFileSync("/proc/self/mountinfo", "utf8")).filter((m) => m === dir || m.startsWith(dir + "/"));
}

/** Pids of live processes whose working directory is dir (PostgreSQL's processes chdir to their data dir). */
export function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/cwd`) === dir && !zombie(Number(e))) pids.push(Number(e));
    } catch {
      // gone, or not ours to look at
    }
  }
  return pids;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !zombie(pid);
  } catch {
    return false;
  }
}

/** Runs one statement on a fresh connection; resolves to the error message, or undefined if it succeeded. */
export async function errorOf(url: string, sql: string | string[]): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (const s of Array.isArray(sql) ? sql : [sql]) await c.query(s);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end();
  }
}

/** Exited but not yet reaped (its parent may not be us). */
function zombie(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
}
