import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { parseManifest, type SnapshotManifest } from "../../common/snapshot";
import { bake, formatProgress } from "../bake";
import type { LocalPaths } from "./state";

/** Local snapshots live in `<state>/snapshots/<id>/` (pgdata + snapshot.json); the last two are kept. */
export function snapshotDir(p: LocalPaths, id: string): string {
  return path.join(p.snapshots, id);
}

export function readSnapshot(p: LocalPaths, id: string): SnapshotManifest {
  const file = path.join(snapshotDir(p, id), "snapshot.json");
  if (!existsSync(file)) throw new Error(`snapshot ${id} is missing from ${p.snapshots}`);
  return parseManifest(JSON.parse(readFileSync(file, "utf8")), file);
}

/**
 * Bakes a new snapshot from the master (the same code as the bake Job). The bake only renames its
 * result into place once verified, so a failure leaves nothing behind and the served snapshot untouched.
 */
export async function bakeSnapshot(
  p: LocalPaths,
  source: string,
  opts: { jobs?: number; log: (line: string) => void; signal?: AbortSignal },
): Promise<SnapshotManifest> {
  mkdirSync(p.snapshots, { recursive: true });
  const incoming = path.join(p.snapshots, `incoming-${process.pid}-${Date.now()}`);
  const result = await bake({ source, out: incoming, jobs: opts.jobs, signal: opts.signal, onProgress: (e) => opts.log(`bake ${formatProgress(e)}`) });
  renameSync(incoming, snapshotDir(p, result.manifest.id));
  return result.manifest;
}

/** Removes every snapshot dir but `keep` (also leftovers of interrupted bakes). */
export function pruneSnapshots(p: LocalPaths, keep: (string | undefined)[], log: (line: string) => void): void {
  if (!existsSync(p.snapshots)) return;
  for (const name of readdirSync(p.snapshots)) {
    if (keep.includes(name)) continue;
    rmSync(path.join(p.snapshots, name), { recursive: true, force: true });
    log(`removed old snapshot ${name}`);
  }
}
