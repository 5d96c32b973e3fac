import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { freePort } from "../../runtime/pg/ports";
import { initCluster, startServer, type PgServer, type Settings } from "../../runtime/pg/server";
import { chownTree, pgRunAs } from "../../runtime/pg/run-as";

export interface TestMaster {
  server: PgServer;
  /** postgres:// URL over TCP with the superuser's password. */
  url: string;
  password: string;
  dir: string;
  stop(): Promise<void>;
}

/** A real PostgreSQL server on 127.0.0.1 with its own port and data dir, for one test file. */
export async function startTestMaster(opts: { settings?: Settings; password?: string } = {}): Promise<TestMaster> {
  const bin = await findPgBinaries();
  const dir = mkdtempSync(path.join(os.tmpdir(), "cndb-test-"));
  chownTree(dir, pgRunAs());
  const dataDir = path.join(dir, "data");
  const password = opts.password ?? "test-secret";
  await initCluster(bin, { dataDir, password });
  const server = await startServer(bin, {
    dataDir,
    port: await freePort(),
    settings: { fsync: false, full_page_writes: false, synchronous_commit: false, ...opts.settings },
  });
  return {
    server,
    password,
    dir,
    url: server.url("postgres", "postgres", password),
    async stop() {
      await server.stop("immediate");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
