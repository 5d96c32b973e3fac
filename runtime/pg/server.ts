import { spawn, execFile, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { PgBinaries } from "./binaries";
import { chownTree, pgRunAs, spawnIdentity, type RunAs } from "./run-as";

const run = promisify(execFile);

export type Settings = Record<string, string | number | boolean>;

export interface InitOptions {
  dataDir: string;
  /** @default "postgres" */
  superuser?: string;
  /** Superuser password; with it, TCP connections need scram-sha-256, without it they are trusted (tests only). */
  password?: string;
  /** @default "C.UTF-8" */
  locale?: string;
  /** WAL segment size in MB (a power of 2, 1-1024): small segments keep a baked PGDATA small. @default 16 */
  walSegmentMB?: number;
}

/** `initdb` a fresh cluster owned by the PostgreSQL account. */
export async function initCluster(bin: PgBinaries, opts: InitOptions): Promise<void> {
  const who = pgRunAs();
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  chownTree(opts.dataDir, who);
  const args = [
    "-D", opts.dataDir,
    "-U", opts.superuser ?? "postgres",
    "--encoding=UTF8",
    `--locale=${opts.locale ?? "C.UTF-8"}`,
    "--auth-local=trust",
    "--no-sync",
    ...(opts.walSegmentMB ? [`--wal-segsize=${opts.walSegmentMB}`] : []),
  ];
  let pwfile: string | undefined;
  if (opts.password !== undefined) {
    pwfile = path.join(mkdtempSync(path.join(os.tmpdir(), "cndb-pw-")), "pw");
    writeFileSync(pwfile, opts.password + "\n", { mode: 0o600 });
    chownTree(path.dirname(pwfile), who);
    args.push(`--pwfile=${pwfile}`, "--auth-host=scram-sha-256");
  } else {
    args.push("--auth-host=trust");
  }
  try {
    await run(bin.path("initdb"), args, { ...spawnIdentity(who), env: { ...process.env, LC_ALL: "C.UTF-8" } });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`initdb failed for ${opts.dataDir}: ${(err.stderr || err.message).trim()}`);
  } finally {
    if (pwfile) rmSync(path.dirname(pwfile), { recursive: true, force: true });
  }
}

export interface StartOptions {
  dataDir: string;
  port: number;
  /** TCP listen address; "" for the local socket only. @default "127.0.0.1" */
  host?: string;
  /** Directory for the Unix socket; a fresh short temp dir when omitted (removed on stop). */
  socketDir?: string;
  /** Extra `-c name=value` settings. */
  settings?: Settings;
  /** Server log; `<dataDir>/../<basename>.log` when omitted. */
  logFile?: string;
  /** @default 60000 */
  startTimeoutMs?: number;
  /** Superuser to probe readiness with. @default "postgres" */
  superuser?: string;
}

/** A postgres postmaster we started and own. */
export class PgServer {
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(
    readonly proc: ChildProcess,
    readonly opts: Required<Pick<StartOptions, "dataDir" | "port" | "host" | "socketDir" | "logFile">>,
    private readonly ownSocketDir: boolean,
    private readonly superuser: string,
  ) {
    this.exited = new Promise((resolve) =>
      proc.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? null : 0);
        resolve(this.exitCode);
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }
  get port(): number {
    return this.opts.port;
  }
  get socketDir(): string {
    return this.opts.socketDir;
  }
  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Connection config over the Unix socket (no password needed: local is trusted). */
  socketConfig(database = "postgres", user = this.superuser): pg.ClientConfig {
    return { host: this.opts.socketDir, port: this.opts.port, database, user };
  }

  /** postgres:// URL over TCP. */
  url(database = "postgres", user = this.superuser, password?: string): string {
    const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    return `postgres://${auth}@${this.opts.host || "127.0.0.1"}:${this.opts.port}/${encodeURIComponent(database)}`;
  }

  /** Runs one query over the socket on a short-lived connection. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database = "postgres"): Promise<pg.QueryResult<R>> {
    const c = new pg.Client(this.socketConfig(database));
    await c.connect();
    try {
      return await c.query<R>(sql, params);
    } finally {
      await c.end();
    }
  }

  /** smart = wait for clients, fast = roll back clients (a clean shutdown checkpoint either way), immediate = crash-like. */
  async stop(mode: "smart" | "fast" | "immediate" = "fast", timeoutMs = 60000): Promise<void> {
    if (this.running) {
      const sig = mode === "smart" ? "SIGTERM" : mode === "fast" ? "SIGINT" : "SIGQUIT";
      this.proc.kill(sig);
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    if (this.ownSocketDir) rmSync(this.opts.socketDir, { recursive: true, force: true });
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.opts.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

function settingArgs(settings: Settings): string[] {
  return Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${typeof v === "boolean" ? (v ? "on" : "off") : v}`]);
}

/** A short socket dir: Unix socket paths are capped near 107 bytes. */
export function makeSocketDir(who: RunAs | undefined = pgRunAs()): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cndb-s-"));
  chownTree(dir, who);
  return dir;
}

/**
 * Starts `postgres` in the foreground of a child process (we own its lifetime) and resolves once it
 * accepts connections (a hot standby counts). Rejects with the server log's tail if it exits first.
 */
export async function startServer(bin: PgBinaries, opts: StartOptions): Promise<PgServer> {
  const who = pgRunAs();
  const ownSocketDir = !opts.socketDir;
  const socketDir = opts.socketDir ?? makeSocketDir(who);
  const host = opts.host ?? "127.0.0.1";
  const logFile = opts.logFile ?? `${opts.dataDir.replace(/\/+$/, "")}.log`;
  const superuser = opts.superuser ?? "postgres";
  const fd = openSync(logFile, "a", 0o600);
  if (who) chownTree(logFile, who);
  const proc = spawn(
    bin.path("postgres"),
    [
      "-D", opts.dataDir,
      ...settingArgs({ port: opts.port, listen_addresses: host, unix_socket_directories: socketDir, ...opts.settings }),
    ],
    { ...spawnIdentity(who), stdio: ["ignore", fd, fd], env: { ...process.env, LC_ALL: "C.UTF-8" } },
  );
  closeSync(fd);
  const server = new PgServer(proc, { dataDir: opts.dataDir, port: opts.port, host, socketDir, logFile }, ownSocketDir, superuser);
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60000);
  let lastError = "";
  while (Date.now() < deadline) {
    if (!server.running) {
      await server.stop();
      throw new Error(`postgres on ${opts.dataDir} exited during start-up (port ${opts.port}):\n${server.logTail()}`);
    }
    const c = new pg.Client({ ...server.socketConfig(), connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      await c.query("SELECT 1");
      await c.end();
      return server;
    } catch (e) {
      lastError = (e as Error).message;
      await c.end().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await server.stop("immediate");
  throw new Error(`postgres on ${opts.dataDir} did not accept connections within ${opts.startTimeoutMs ?? 60000} ms (${lastError}):\n${server.logTail()}`);
}
