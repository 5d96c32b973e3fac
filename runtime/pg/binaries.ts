import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where PostgreSQL's server and client programs live, and which major version they are. */
export interface PgBinaries {
  bindir: string;
  major: number;
  version: string;
  /** Absolute path of one program, e.g. `bin.path("pg_dump")`. */
  path(program: string): string;
}

export class MissingPostgresError extends Error {
  constructor(detail: string) {
    super(
      `PostgreSQL binaries not found (${detail}). Install them: on Debian/Ubuntu ` +
        "`apt-get install postgresql` (or postgresql-<major>), on macOS `brew install postgresql@16`, " +
        "or point CNDB_PG_BIN at a directory holding initdb, postgres, pg_dump and pg_restore.",
    );
    this.name = "MissingPostgresError";
  }
}

const REQUIRED = ["initdb", "postgres", "pg_ctl", "pg_dump", "pg_restore"];

function candidates(): string[] {
  const dirs: string[] = [];
  if (process.env.CNDB_PG_BIN) return [process.env.CNDB_PG_BIN];
  // Debian/Ubuntu keep server programs out of PATH, one directory per major: newest first.
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    for (const v of readdirSync(debian).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))) {
      dirs.push(path.join(debian, v, "bin"));
    }
  }
  for (const d of (process.env.PATH ?? "").split(path.delimiter)) if (d) dirs.push(d);
  return dirs;
}

let cached: Promise<PgBinaries> | undefined;

/** Finds a directory holding every program the bake and the replica need (newest major first). */
export function findPgBinaries(): Promise<PgBinaries> {
  cached ??= locate().catch((e) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

async function locate(): Promise<PgBinaries> {
  const tried: string[] = [];
  for (const dir of candidates()) {
    if (!REQUIRED.every((p) => existsSync(path.join(dir, p)))) {
      tried.push(dir);
      continue;
    }
    const { stdout } = await run(path.join(dir, "postgres"), ["--version"]);
    const m = /(\d+)(?:\.(\d+))?/.exec(stdout);
    if (!m) throw new Error(`cannot read the PostgreSQL version from ${dir}/postgres --version: ${stdout.trim()}`);
    return { bindir: dir, major: Number(m[1]), version: m[0], path: (p) => path.join(dir, p) };
  }
  throw new MissingPostgresError(
    process.env.CNDB_PG_BIN
      ? `CNDB_PG_BIN=${process.env.CNDB_PG_BIN} lacks one of ${REQUIRED.join(", ")}`
      : `no directory has all of ${REQUIRED.join(", ")}; looked in /usr/lib/postgresql/*/bin and PATH`,
  );
}
