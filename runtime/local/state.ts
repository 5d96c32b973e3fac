import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

/** Everything local mode keeps between runs lives under one state dir (default `.cndb/`). */
export function localPaths(root: string) {
  const r = path.resolve(root);
  return {
    root: r,
    masterDir: path.join(r, "master"),
    masterData: path.join(r, "master", "data"),
    snapshots: path.join(r, "snapshots"),
    replicas: path.join(r, "replicas"),
    stateFile: path.join(r, "state.json"),
    /** libpq password file for the managed master: `PGPASSFILE=.cndb/pgpass psql <master url>`. */
    pgpass: path.join(r, "pgpass"),
    controlSocket: path.join(r, "control.sock"),
    pidFile: path.join(r, "local.pid"),
  };
}
export type LocalPaths = ReturnType<typeof localPaths>;

export const LocalState = z.object({
  version: z.literal(1),
  master: z.object({
    /** True when local mode created (and so starts and stops) the master. */
    managed: z.boolean(),
    /** Without the password (that is in pgpass, or in the user's own URL). */
    url: z.string(),
    port: z.number().int(),
  }),
  snapshots: z.object({ current: z.string().optional(), previous: z.string().optional() }).default({}),
});
export type LocalState = z.infer<typeof LocalState>;

export function readState(p: LocalPaths): LocalState | undefined {
  if (!existsSync(p.stateFile)) return undefined;
  const r = LocalState.safeParse(JSON.parse(readFileSync(p.stateFile, "utf8")));
  if (!r.success) throw new Error(`${p.stateFile} is not a local-mode state file (${r.error.issues[0].message}); move it away to start afresh`);
  return r.data;
}

/** Atomic: a crash mid-write never leaves a torn state file. */
export function writeState(p: LocalPaths, s: LocalState): void {
  mkdirSync(p.root, { recursive: true });
  const tmp = `${p.stateFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + "\n", { mode: 0o600 });
  renameSync(tmp, p.stateFile);
}

/** URL with the password removed, for printing and state. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "<unparseable url>";
  }
}
