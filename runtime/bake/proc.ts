import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { pgRunAs, spawnIdentity } from "../pg/run-as";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called for each stderr line (pg_dump/pg_restore -v report their progress there). */
  onStderrLine?: (line: string) => void;
}

export class ProgramError extends Error {
  constructor(
    readonly program: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(`${program} exited with ${exitCode === null ? "a signal" : `code ${exitCode}`}${stderrTail ? `:\n${stderrTail}` : ""}`);
    this.name = "ProgramError";
  }
}

/**
 * Runs a PostgreSQL client program as the PostgreSQL account. The abort signal kills it (SIGTERM,
 * then SIGKILL after 5 s); errors carry the last stderr lines worth reading (not the -v chatter).
 */
export function runPgProgram(file: string, args: string[], opts: RunOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...spawnIdentity(pgRunAs()),
      env: { ...process.env, LC_ALL: "C.UTF-8", ...opts.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const tail: string[] = [];
    const rl = createInterface({ input: child.stderr! });
    rl.on("line", (line) => {
      opts.onStderrLine?.(line);
      // verbose lines are "<prog>: <message>"; errors and warnings say so
      if (/error|warning|fatal|detail|hint|could not|no space/i.test(line) || !/^\w+: /.test(line)) {
        tail.push(line);
        if (tail.length > 15) tail.shift();
      }
    });
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), 5000);
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (e) => {
      opts.signal?.removeEventListener("abort", onAbort);
      reject(e);
    });
    child.once("close", (code) => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (code === 0) resolve();
      else reject(new ProgramError(file.split("/").pop()!, code, tail.join("\n")));
    });
  });
}
