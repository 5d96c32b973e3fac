import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import pg from "pg";
import type { PgBinaries } from "../pg/binaries";
import { freePort } from "../pg/ports";
import { chownTree, pgRunAs } from "../pg/run-as";
import { initCluster, startServer, type PgServer } from "../pg/server";
import { loadDemoData, DEMO_SCHEMA } from "./demo-data";
import { redactUrl, type LocalPaths, type LocalState } from "./state";

export interface Master {
  /** With the password: for the bake only, never printed. */
  url: string;
  /** Without the password. */
  displayUrl: string;
  port: number;
  managed: boolean;
  server?: PgServer;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** `host:port:db:user:password` (libpq's format), readable by us only. */
function writePgpass(p: LocalPaths, port: number, password: string): void {
  writeFileSync(p.pgpass, `127.0.0.1:${port}:*:postgres:${password}\nlocalhost:${port}:*:postgres:${password}\n`, { mode: 0o600 });
}

function readPgpassPassword(p: LocalPaths): string {
  const line = readFileSync(p.pgpass, "utf8").split("\n")[0] ?? "";
  const pw = line.split(":").slice(4).join(":");
  if (!pw) throw new Error(`${p.pgpass} holds no password for the local master; move ${p.root} away to start afresh`);
  return pw;
}

/** Checks a user-given master is reachable with the given credentials before anything else happens. */
async function probe(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    await c.query("SELECT 1");
  } catch (e) {
    throw new Error(`--master ${redactUrl(url)}: cannot connect (${(e as Error).message})`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The master local mode bakes from: the user's (`--master`), or one it manages under the state dir,
 * created on first use and loaded with the demo dataset.
 */
export async function openMaster(
  p: LocalPaths,
  state: LocalState | undefined,
  opts: { masterUrl?: string; bin: PgBinaries; demoScale?: number; log: (line: string) => void },
): Promise<{ master: Master; created: boolean }> {
  if (opts.masterUrl) {
    await probe(opts.masterUrl);
    const port = Number(new URL(opts.masterUrl).port || 5432);
    return { master: { url: opts.masterUrl, displayUrl: redactUrl(opts.masterUrl), port, managed: false, stop: async () => undefined }, created: false };
  }
  const exists = existsSync(`${p.masterData}/PG_VERSION`);
  const settings = { shared_buffers: "256MB", max_wal_size: "2GB" };
  let port = state?.master.managed && (await portFree(state.master.port)) ? state.master.port : await freePort();
  let password: string;
  if (exists) {
    password = readPgpassPassword(p);
    opts.log(`starting the local master (${p.masterData}) on 127.0.0.1:${port}`);
  } else {
    mkdirSync(p.masterDir, { recursive: true, mode: 0o700 });
    chownTree(p.masterDir, pgRunAs());
    password = randomBytes(18).toString("base64url");
    opts.log(`creating a local master in ${p.masterData}`);
    await initCluster(opts.bin, { dataDir: p.masterData, password });
    port = await freePort();
  }
  writePgpass(p, port, password);
  const server = await startServer(opts.bin, { dataDir: p.masterData, port, settings, logFile: `${p.masterDir}/postgres.log` });
  const url = server.url("postgres", "postgres", password);
  const master: Master = { url, displayUrl: redactUrl(url), port, managed: true, server, stop: () => server.stop("fast") };
  // A marker, not PG_VERSION: a load interrupted on the first run is redone on the next.
  const loadedMarker = `${p.masterDir}/demo-loaded`;
  if (!existsSync(loadedMarker)) {
    try {
      const c = new pg.Client(server.socketConfig());
      await c.connect();
      const t0 = Date.now();
      await loadDemoData(c, {
        scale: opts.demoScale,
        onProgress: (label, done, total) => opts.log(`demo data: ${label} (${done}/${total}, ${((Date.now() - t0) / 1000).toFixed(1)} s)`),
      });
      await c.end();
      writeFileSync(loadedMarker, new Date().toISOString() + "\n");
      opts.log(`demo data: schema ${DEMO_SCHEMA} loaded`);
    } catch (e) {
      await server.stop();
      throw e;
    }
  }
  return { master, created: !exists };
}
