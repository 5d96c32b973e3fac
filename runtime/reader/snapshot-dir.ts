import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { parseManifest, type SnapshotManifest } from "../../common/snapshot";
import type { PgBinaries } from "../pg/binaries";
import { spawnIdentity, type RunAs } from "../pg/run-as";
import { ReplicaOptionError } from "./options";

const run = promisify(execFile);

export interface SnapshotDir {
  dir: string;
  pgdata: string;
  manifest: SnapshotManifest;
}

/**
 * Reads and checks a snapshot dir before anything is mounted or started: the manifest parses, the
 * PGDATA is there, was made by this PostgreSQL major, is stopped and carries standby.signal (without it
 * PostgreSQL would start as a writable primary).
 */
export function openSnapshot(dir: string, bin: PgBinaries): SnapshotDir {
  const bad = (detail: string) => new ReplicaOptionError("snapshot", detail);
  const abs = path.resolve(dir);
  if (!existsSync(abs)) throw bad(`${abs} does not exist`);
  if (!statSync(abs).isDirectory()) throw bad(`${abs} is not a directory`);
  const manifestFile = path.join(abs, "snapshot.json");
  if (!existsSync(manifestFile)) throw bad(`${manifestFile} is missing (not a snapshot dir: expected snapshot.json and pgdata/)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(manifestFile, "utf8"));
  } catch (e) {
    throw bad(`${manifestFile} is not valid JSON (${(e as Error).message})`);
  }
  let manifest: SnapshotManifest;
  try {
    manifest = parseManifest(json, manifestFile);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const pgdata = path.join(abs, "pgdata");
  if (!existsSync(path.join(pgdata, "PG_VERSION"))) throw bad(`${pgdata} is not a PostgreSQL data directory (no PG_VERSION)`);
  const major = Number(readFileSync(path.join(pgdata, "PG_VERSION"), "utf8").trim());
  if (major !== manifest.postgresMajor) {
    throw bad(`${pgdata} is PostgreSQL ${major} but snapshot.json says postgresMajor ${manifest.postgresMajor}`);
  }
  if (major !== bin.major) {
    throw bad(`the snapshot needs PostgreSQL ${major}, but the PostgreSQL found is ${bin.version} (${bin.bindir}); set CNDB_PG_BIN`);
  }
  if (!existsSync(path.join(pgdata, "standby.signal"))) {
    throw bad(`${pgdata}/standby.signal is missing: the bake must leave it, or the replica would start writable`);
  }
  if (existsSync(path.join(pgdata, "postmaster.pid"))) {
    throw bad(`${pgdata}/postmaster.pid exists: the snapshot's PostgreSQL was not stopped cleanly, or a replica runs on it in place`);
  }
  return { dir: abs, pgdata, manifest };
}

/**
 * pg_controldata on the data dir PostgreSQL will use: a standby can only start from a cleanly stopped
 * cluster whose last WAL was written with wal_level replica or logical. Clearer than PostgreSQL's log.
 */
export async function checkControlData(bin: PgBinaries, dataDir: string, who: RunAs | undefined): Promise<void> {
  const prog = bin.path("pg_controldata");
  if (!existsSync(prog)) return;
  const { stdout } = await run(prog, ["-D", dataDir], { ...spawnIdentity(who), env: { ...process.env, LC_ALL: "C" } });
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(stdout)?.[1].trim();
  const state = field("Database cluster state");
  if (state !== "shut down" && state !== "shut down in recovery") {
    throw new ReplicaOptionError("snapshot", `the snapshot's PGDATA was not stopped cleanly (cluster state "${state}"); re-bake it`);
  }
  const walLevel = field("wal_level setting");
  if (walLevel === "minimal") {
    throw new ReplicaOptionError("snapshot", "the snapshot's PGDATA was last stopped with wal_level=minimal; a standby needs replica: re-bake it");
  }
}
