import { readFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import pino from "pino";
import { API_PORT } from "../../common/contract";
import { parseManifest, type SnapshotManifest } from "../../common/snapshot";
import { Backends } from "./backends";
import { loadConfig } from "./config";
import { buildApi } from "./index";

export interface ServeOptions {
  replicas: string[];
  snapshotDir: string;
  port: number;
  listen?: string;
  configFile?: string;
  /** @default false */
  logger?: FastifyServerOptions["logger"];
}

export interface RunningApi {
  app: FastifyInstance;
  backends: Backends;
  url: string;
  snapshot: SnapshotManifest;
  close(): Promise<void>;
}

export function readSnapshot(dir: string): SnapshotManifest {
  const file = path.join(dir, "snapshot.json");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`--snapshot: cannot read ${file}: ${(e as Error).message}`);
  }
  return parseManifest(json, file);
}

/** `cndb api` without the CLI: the replicas all serve the snapshot in `snapshotDir`. */
export async function serveApi(o: ServeOptions): Promise<RunningApi> {
  if (!o.replicas.length) throw new Error("--replica: give at least one PostgreSQL URL");
  const snapshot = readSnapshot(o.snapshotDir);
  const config = o.configFile ? loadConfig(o.configFile) : undefined;
  const backends = new Backends(
    o.replicas.map((url, i) => ({ id: `replica-${i + 1}`, url, snapshot })),
    { poolSize: config?.poolSize, statementTimeoutMs: config?.statementTimeoutMs },
  );
  let app: FastifyInstance;
  try {
    app = await buildApi({ backends, config, logger: o.logger ?? false });
    await app.listen({ port: o.port, host: o.listen ?? "127.0.0.1" });
  } catch (e) {
    await backends.close();
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  const host = o.listen ?? "127.0.0.1";
  return {
    app,
    backends,
    snapshot,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    async close() {
      await app.close();
      await backends.close();
    },
  };
}

function parsePort(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`--port: expected a port number 0-65535, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function register(program: Command): void {
  program
    .command("api")
    .description("serve the HTTP read API over one or more read-only replicas")
    .requiredOption("--replica <url>", "PostgreSQL URL of a replica; repeat for several", (v: string, all: string[]) => [...all, v], [] as string[])
    .requiredOption("--snapshot <dir>", "snapshot directory (its snapshot.json labels every response)")
    .option("--port <p>", "HTTP port", String(API_PORT))
    .option("--listen <addr>", "listen address", "127.0.0.1")
    .option("--config <file>", "API config file (JSON): named queries, limits, auth tokens, sql endpoint")
    .action(async (opts: { replica: string[]; snapshot: string; port: string; listen: string; config?: string }) => {
      // Asynchronous writes: a request never waits on stdout, and lines that arrive during a write go out
      // together in the next one. Flushed before exit.
      const log = pino.destination({ dest: 1, sync: false });
      const api = await serveApi({
        replicas: opts.replica,
        snapshotDir: opts.snapshot,
        port: parsePort(opts.port),
        listen: opts.listen,
        configFile: opts.config,
        logger: { stream: log },
      });
      console.log(`api listening url=${api.url} snapshot=${api.snapshot.id} replicas=${opts.replica.length}`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGTERM", stop);
          process.off("SIGINT", stop);
          api
            .close()
            .catch((e) => console.error(`cndb api: ${(e as Error).message}`))
            .finally(() => {
              try {
                log.flushSync();
              } catch {
                // nothing buffered, or stdout gone
              }
              resolve();
            });
        };
        process.on("SIGTERM", stop);
        process.on("SIGINT", stop);
      });
    });
}
