import type { Command } from "commander";
import { loadConfig } from "../api/config";
import { control } from "./control";
import { parseDuration } from "./duration";
import { localPaths } from "./state";
import { LocalDeployment, type LocalStatus } from "./up";

const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max} (got "${v}")`);
  return n;
};

function printStatus(s: LocalStatus): void {
  const snap = (x: LocalStatus["snapshot"]["current"]) => (x ? `${x.id} (age ${x.ageSeconds} s)` : "none");
  console.log(`master    ${s.master.url}${s.master.managed ? " (managed)" : ""}`);
  console.log(`api       ${s.api.url}`);
  console.log(`snapshot  ${snap(s.snapshot.current)}; previous ${snap(s.snapshot.previous)}`);
  for (const r of s.replicas) console.log(`replica   ${r.name} port=${r.port} pid=${r.pid} snapshot=${r.snapshotId} ready=${r.ready} ${r.url}`);
}

export function register(program: Command): void {
  const local = program
    .command("local")
    .description("the whole pipeline on this machine: master, bake, read-only replicas, read API")
    .option("--state-dir <dir>", "where local mode keeps its master, snapshots and state", ".cndb");

  const stateDir = () => local.opts<{ stateDir: string }>().stateDir;
  const socket = () => localPaths(stateDir()).controlSocket;

  local
    .command("up")
    .description("start (or resume) the local deployment and stay in the foreground; Ctrl-C stops it")
    .option("--master <url>", "bake from this PostgreSQL instead of a local master with the demo dataset")
    .option("--replicas <n>", "read-only replicas", int("--replicas", 1, 16), 2)
    .option("--port <port>", "read API port", int("--port", 1, 65535), 8080)
    .option("--listen <addr>", "read API listen address", "127.0.0.1")
    .option("--refresh-every <duration>", "bake and switch on a schedule, e.g. 10m")
    .option("--warmup <mode>", "replica warm-up: full | files | none")
    .option("--jobs <n>", "parallel dump/restore jobs", int("--jobs", 1, 64))
    .option("--demo-scale <x>", "demo dataset size for a new local master (1 = about 1M rows)", parseFloat)
    .option("--api-config <file>", "read API config (JSON)")
    .action(async (o) => {
      const refreshEveryMs = o.refreshEvery ? parseDuration(o.refreshEvery) : undefined;
      if (o.warmup !== undefined && !["full", "files", "none"].includes(o.warmup)) throw new Error(`--warmup must be one of full, files, none (got "${o.warmup}")`);
      const apiConfig = o.apiConfig ? loadConfig(o.apiConfig) : undefined;
      const d = await LocalDeployment.start({
        stateDir: stateDir(), master: o.master, replicas: o.replicas, port: o.port, listen: o.listen,
        refreshEveryMs, warmup: o.warmup, jobs: o.jobs, demoScale: o.demoScale, apiConfig,
      });
      const s = d.status();
      console.log(`\ncontainer-native-db local mode is serving snapshot ${s.snapshot.current?.id}`);
      console.log(`  read API      ${s.api.url}   (try: curl ${s.api.url}/v1/snapshot)`);
      console.log(`  master        ${s.master.url}${s.master.managed ? `   (password in ${d.paths.pgpass}: PGPASSFILE=${d.paths.pgpass} psql '${s.master.url}')` : ""}`);
      for (const r of s.replicas) console.log(`  replica ${r.name.padEnd(5)} ${r.url}   (read-only, ready in ${r.startupMs} ms)`);
      console.log(`  control       npm run cndb -- local status | refresh | rollback | scale <n>\nPress Ctrl-C to stop.`);
      await new Promise<void>((resolve) => {
        const onSignal = (sig: string) => {
          console.error(`\n${sig}: stopping (state kept in ${d.paths.root}) ...`);
          void d.stop().then(resolve, (e: Error) => {
            console.error(`stop: ${e.message}`);
            resolve();
          });
        };
        process.once("SIGINT", () => onSignal("SIGINT"));
        process.once("SIGTERM", () => onSignal("SIGTERM"));
      });
      console.error("stopped");
    });

  local
    .command("status")
    .description("master, API, snapshots and replicas of the running local deployment")
    .option("--json", "as JSON")
    .action(async (o) => {
      const s = (await control(socket(), "GET", "/status")) as LocalStatus;
      if (o.json) console.log(JSON.stringify(s, null, 2));
      else printStatus(s);
    });

  local
    .command("refresh")
    .description("bake a new snapshot from the master, start replicas from it, switch traffic, stop the old ones")
    .action(async () => {
      const r = (await control(socket(), "POST", "/refresh")) as { snapshot: { id: string }; previous: string | null; elapsedMs: number };
      console.log(`serving ${r.snapshot.id} (previous ${r.previous ?? "none"}) after ${(r.elapsedMs / 1000).toFixed(1)} s`);
    });

  local
    .command("rollback")
    .description("serve the previous snapshot again")
    .action(async () => {
      const r = (await control(socket(), "POST", "/rollback")) as { snapshot: { id: string }; previous: string };
      console.log(`serving ${r.snapshot.id} (previous ${r.previous})`);
    });

  local
    .command("scale <replicas>")
    .description("run this many read-only replicas")
    .action(async (n: string) => {
      const replicas = int("replicas", 1, 16)(n);
      await control(socket(), "POST", "/scale", { replicas });
      console.log(`scaled to ${replicas} replicas`);
    });
}
