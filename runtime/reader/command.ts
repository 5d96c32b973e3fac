import { InvalidArgumentError, Option, type Command } from "commander";
import { READER_PORT } from "../../common/contract";
import { ReplicaOptionError, startReplica, WARMUP_MODES, DEFAULT_WARMUP, type ReplicaOptions, type WarmupMode } from "./index";

/** The CLI flag of each library option, so errors name what the user typed. */
const FLAGS: Partial<Record<keyof ReplicaOptions, string>> = {
  snapshot: "--snapshot",
  port: "--port",
  listen: "--listen",
  workDir: "--work-dir",
  warmup: "--warmup",
  inPlace: "--in-place",
  socketDir: "--socket-dir",
  readyFile: "--ready-file",
};

function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new InvalidArgumentError("must be an integer from 1 to 65535.");
  return n;
}

interface Flags {
  snapshot: string;
  port: number;
  listen: string;
  workDir?: string;
  warmup: WarmupMode;
  inPlace?: boolean;
  socketDir?: string;
  readyFile?: string;
}

export function register(program: Command): void {
  program
    .command("replica")
    .description("serve a baked snapshot as a read-only PostgreSQL replica (permanent hot standby)")
    .requiredOption("--snapshot <dir>", "snapshot dir (pgdata/ and snapshot.json, the bake's output)")
    .option("--port <port>", "TCP port", parsePort, READER_PORT)
    .option("--listen <addresses>", 'listen_addresses ("" for the Unix socket only)', "127.0.0.1")
    .option("--work-dir <dir>", "where the working copy goes (a subdirectory, removed on stop; same file system as the snapshot lets XFS/btrfs clone)")
    .addOption(new Option("--warmup <mode>", "before ready: files = copy-up every relation file, full = also read it into the page cache").choices(WARMUP_MODES).default(DEFAULT_WARMUP))
    .option("--in-place", "run on <snapshot>/pgdata itself (in a container, whose rootfs is already copy-on-write)")
    .option("--socket-dir <dir>", "Unix socket directory (shared with the read API)")
    .option("--ready-file <file>", "created once ready, removed on stop (readiness probe)")
    .action(async (f: Flags) => runReplica(f));
}

async function runReplica(f: Flags): Promise<void> {
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) return; // the first one is already stopping everything
    process.stderr.write(`replica: ${sig}, stopping\n`);
    abort.abort(new Error(`interrupted by ${sig}`));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    let replica;
    try {
      replica = await startReplica({
        snapshot: f.snapshot,
        port: f.port,
        listen: f.listen,
        workDir: f.workDir,
        warmup: f.warmup,
        inPlace: f.inPlace ?? false,
        socketDir: f.socketDir,
        readyFile: f.readyFile,
        signal: abort.signal,
        log: (line) => process.stderr.write(`replica: ${line}\n`),
      });
    } catch (e) {
      if (e instanceof ReplicaOptionError) throw new Error(`${FLAGS[e.field] ?? e.field}: ${e.detail}`);
      if (abort.signal.aborted) return; // stopped before ready: cleaned up, not an error
      throw e;
    }
    process.stdout.write(replica.readyLine + "\n");
    process.stderr.write(`replica: ${replica.workingCopy} working copy, socket ${replica.socketDir}, pid ${replica.pid}\n`);
    // A signal after ready aborts, which stops the replica; either way we end when PostgreSQL is gone.
    const code = await replica.exited;
    if (!abort.signal.aborted) throw new Error(`PostgreSQL exited unexpectedly (code ${code}); working copy removed`);
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
