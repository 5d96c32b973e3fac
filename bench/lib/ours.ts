/**
 * Our run-time code, loaded lazily: the benchmarks run their baseline arms even while (or where) the
 * bake, the replica, the read API or local mode are missing, and name what is missing.
 */
import path from "node:path";
import { onCleanup } from "./cleanup";

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

export type ReplicaModule = typeof import("../../runtime/reader");
export type OurReplica = import("../../runtime/reader").Replica;

/** The replica module, its startReplica wrapped so a Ctrl-C still stops replicas (and unmounts overlays). */
export function loadReplica(): Loaded<ReplicaModule> {
  const m = load<ReplicaModule>("reader/index", ["startReplica"]);
  if (!m.ok) return m;
  const startReplica: ReplicaModule["startReplica"] = async (o) => {
    const rep = await m.value.startReplica(o);
    const stop = onCleanup(`replica on port ${rep.port}`, () => rep.stop());
    return { ...rep, stop };
  };
  return { ok: true, value: { ...m.value, startReplica } };
}

// ---- the bake (runtime/bake) and its image writer ----

export type BakeModule = typeof import("../../runtime/bake");
export type BakeResult = import("../../runtime/bake").BakeResult;
export type BakeProgress = import("../../runtime/bake").BakeProgress;

export function loadBake(): Loaded<BakeModule> {
  return load<BakeModule>("bake/index", ["bake"]);
}

export type ImageModule = typeof import("../../runtime/bake/image");

export function loadImage(): Loaded<ImageModule> {
  return load<ImageModule>("bake/image/index", ["writeImageLayout"]);
}

export type ChecksumModule = typeof import("../../runtime/bake/checksum");

/** The bake's per-table checksum SQL (B4 times it alone to explain the bake's dump and verify phases). */
export function loadChecksum(): Loaded<ChecksumModule> {
  return load<ChecksumModule>("bake/checksum", ["checksumSql"]);
}

// ---- local mode (runtime/local) ----

export type LocalModule = typeof import("../../runtime/local/up");

export function loadLocal(): Loaded<LocalModule> {
  return load<LocalModule>("local/up", ["LocalDeployment"]);
}
