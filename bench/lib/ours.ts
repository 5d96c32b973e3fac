/**
 * Our run-time code, loaded lazily: the benchmarks run their baseline arms even while (or where) the
 * bake, the replica, the read API or local mode are missing, and name what is missing.
 */
import path from "node:path";

const RUNTIME = path.join(__dirname, "..", "..", "runtime");

export type Loaded<T> = { ok: true; value: T } | { ok: false; reason: string };

function load<T>(rel: string, names: string[]): Loaded<T> {
  const file = path.join(RUNTIME, rel);
  let mod: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(file) as Record<string, unknown>;
  } catch (e) {
    return { ok: false, reason: `runtime/${rel} could not be loaded (${(e as Error).message.split("\n")[0]})` };
  }
  const missing = names.filter((n) => typeof mod[n] !== "function");
  if (missing.length) return { ok: false, reason: `runtime/${rel} does not export ${missing.join(", ")} yet` };
  return { ok: true, value: mod as T };
}

// ---- the replica (runtime/reader) ----

export interface OurReplica {
  port: number;
  startupMs: number;
  workingCopy: unknown;
  stop(): Promise<void>;
  url(database?: string, user?: string): string;
}

export interface ReplicaModule {
  startReplica(o: {
    snapshot: string;
    port: number;
    workDir?: string;
    warmup?: "full" | "files" | "none";
    inPlace?: boolean;
    workingCopy?: "auto" | "overlay" | "fuse-overlayfs" | "copy";
    log?: (line: string) => void;
  }): Promise<OurReplica>;
}

export function loadReplica(): Loaded<ReplicaModule> {
  return load<ReplicaModule>("reader/index", ["startReplica"]);
}

// ---- the bake (runtime/bake) ----

export interface BakeResult {
  dir: string;
  manifest: { pgdataBytes: number; id: string };
  elapsedMs: number;
  [k: string]: unknown;
}

export interface BakeModule {
  bake(opts: Record<string, unknown>): Promise<BakeResult>;
}

export function loadBake(): Loaded<BakeModule> {
  return load<BakeModule>("bake/index", ["bake"]);
}
