import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { BakeError } from "./errors";

const run = promisify(execFile);

/** The master's connection, split so the password never reaches a command line or a log. */
export interface Source {
  /** postgres:// URL without the password (pg_dump gets it through PGPASSWORD). */
  url: string;
  password?: string;
  host: string;
  port: number;
  user: string;
  database: string;
  /** For messages: postgres://user@host:port/db. */
  display: string;
}

export function parseSource(raw: string): Source {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BakeError("option", "--source: not a URL; expected postgres://user:password@host:port/database");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new BakeError("option", `--source: scheme ${u.protocol.replace(/:$/, "")} is not supported; expected postgres://user:password@host:port/database`);
  }
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.password = "";
  const user = decodeURIComponent(u.username) || process.env.PGUSER || "postgres";
  const database = decodeURIComponent(u.pathname.replace(/^\//, "")) || user;
  const host = u.hostname.replace(/^\[|\]$/g, "") || u.searchParams.get("host") || "localhost";
  const port = Number(u.port || u.searchParams.get("port") || 5432);
  return { url: u.toString(), password, host, port, user, database, display: `postgres://${user}@${host}:${port}/${database}` };
}

/** A node-postgres client config for the source (the password in memory only). */
export function clientConfig(s: Source): pg.ClientConfig {
  const u = new URL(s.url);
  if (s.password !== undefined) u.password = encodeURIComponent(s.password);
  return { connectionString: u.toString(), connectionTimeoutMillis: 15000, application_name: "cndb-bake" } as pg.ClientConfig;
}

/** Connects, turning the usual failures into errors that say what to fix. */
export async function connectSource(s: Source): Promise<pg.Client> {
  const c = new pg.Client(clientConfig(s));
  c.on("error", () => undefined); // a dropped connection surfaces on the next query
  try {
    await c.connect();
    return c;
  } catch (e) {
    await c.end().catch(() => undefined);
    throw sourceError(e, s);
  }
}

export function sourceError(e: unknown, s: Source): BakeError {
  const err = e as Error & { code?: string };
  const code = err.code ?? "";
  if (["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EAI_AGAIN", "ECONNRESET"].includes(code) || /timeout/i.test(err.message)) {
    return new BakeError("source-unreachable", `cannot reach the master at ${s.host}:${s.port} (${code || err.message}): is it running and reachable from here?`);
  }
  if (code === "28P01" || code === "28000") {
    return new BakeError("source-auth", `the master at ${s.host}:${s.port} refused user ${JSON.stringify(s.user)}: ${err.message} (check the credentials in --source or --source-secret-arn)`);
  }
  if (code === "3D000") {
    return new BakeError("source-database", `database ${JSON.stringify(s.database)} does not exist on the master at ${s.host}:${s.port}`);
  }
  return new BakeError("source-unreachable", `cannot connect to ${s.display}: ${err.message}`);
}

/** Major version of a client program, from `<prog> --version` ("pg_dump (PostgreSQL) 15.4 ..."). */
export async function programMajor(file: string): Promise<{ major: number; version: string }> {
  const { stdout } = await run(file, ["--version"]);
  const m = /\)\s+(\d+)(?:\.(\d+))?/.exec(stdout) ?? /(\d+)(?:\.(\d+))?/.exec(stdout);
  if (!m) throw new BakeError("binaries", `cannot read the version from ${file} --version: ${stdout.trim()}`);
  return { major: Number(m[1]), version: m[0].replace(/^\)\s+/, "") };
}

/** pg_dump must be at least the server's major version (it refuses older servers' newer catalogs). */
export function checkDumpVersion(dumpMajor: number, dumpVersion: string, serverVersionNum: number, serverVersion: string): void {
  const serverMajor = Math.floor(serverVersionNum / 10000);
  if (serverMajor < 12) {
    throw new BakeError("version", `the master runs PostgreSQL ${serverVersion}; the bake supports PostgreSQL 12 or newer`);
  }
  if (dumpMajor < serverMajor) {
    throw new BakeError(
      "version",
      `pg_dump ${dumpVersion} is older than the master (PostgreSQL ${serverVersion}): install PostgreSQL ${serverMajor} or newer ` +
        `(Debian/Ubuntu: apt-get install postgresql-${serverMajor}) or point CNDB_PG_BIN at its bin directory`,
    );
  }
}
