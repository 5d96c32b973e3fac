import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { findPgBinaries, MissingPostgresError, type PgBinaries } from "../pg/binaries";

/**
 * Finds PostgreSQL; as root on Debian/Ubuntu, installs it with apt when missing (without letting the
 * package start a cluster of its own on 5432). Elsewhere the error says what to install.
 */
export async function ensurePostgres(log: (line: string) => void): Promise<PgBinaries> {
  try {
    return await findPgBinaries();
  } catch (e) {
    if (!(e instanceof MissingPostgresError) || !canApt()) throw e;
  }
  log("PostgreSQL not found: installing Debian's postgresql package with apt-get (root) ...");
  mkdirSync("/etc/postgresql-common", { recursive: true });
  if (!existsSync("/etc/postgresql-common/createcluster.conf")) {
    writeFileSync("/etc/postgresql-common/createcluster.conf", "create_main_cluster = false\n");
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", "postgresql", "postgresql-client"]]) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "inherit", "inherit"], env });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (exit ${r.status}); install PostgreSQL by hand: apt-get install postgresql`);
  }
  return findPgBinaries();
}

function canApt(): boolean {
  return process.getuid?.() === 0 && existsSync("/etc/debian_version") && spawnSync("apt-get", ["--version"]).status === 0;
}
