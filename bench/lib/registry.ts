import { spawn } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { freePort } from "../../runtime/pg/ports";
import { onCleanup } from "./cleanup";
import { makeDir, removeDir, sleep } from "./proc";

export const REGISTRY_BIN = "/usr/bin/docker-registry";

export interface Registry {
  /** host:port on 127.0.0.1 */
  host: string;
  stop(): Promise<void>;
}

export function registryMissing(): string | undefined {
  return existsSync(REGISTRY_BIN) ? undefined : `${REGISTRY_BIN} is not installed (apt-get install docker-registry)`;
}

/** Debian's `docker-registry` (distribution 2.x) on 127.0.0.1, anonymous, storage under workRoot. */
export async function startRegistry(workRoot: string): Promise<Registry> {
  const dir = makeDir(workRoot, "cndb-bench-registry-");
  const host = `127.0.0.1:${await freePort()}`;
  // JSON is YAML: the registry reads it as its config.yml.
  const config = {
    version: 0.1,
    log: { level: "error", accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: path.join(dir, "storage") }, delete: { enabled: true } },
    http: { addr: host, secret: randomBytes(16).toString("hex") },
  };
  const configFile = path.join(dir, "config.yml");
  writeFileSync(configFile, JSON.stringify(config));
  const logFile = path.join(dir, "registry.log");
  const log = openSync(logFile, "a");
  const proc = spawn(REGISTRY_BIN, ["serve", configFile], { stdio: ["ignore", log, log] });
  closeSync(log);
  let exited = false;
  const exit = new Promise<void>((r) => proc.once("exit", () => ((exited = true), r())));
  const stop = onCleanup(`registry ${host}`, async () => {
    if (!exited) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(t);
    }
    removeDir(dir);
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited || Date.now() > deadline) {
      const tail = readFileSync(logFile, "utf8").slice(-1000);
      await stop();
      throw new Error(`docker-registry did not come up on ${host}: ${tail}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200) return { host, stop };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
}
