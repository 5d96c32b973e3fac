import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { PgBinaries } from "../pg/binaries";
import { pgRunAs, spawnIdentity } from "../pg/run-as";
import { dirBytes } from "./files";
import { quoteExact } from "./patterns";
import { runPgProgram } from "./proc";
import type { Selection } from "./select";
import type { Source } from "./source";

const run = promisify(execFile);

export interface DumpParams {
  bin: PgBinaries;
  source: Source;
  /** The exported snapshot the dump must read (the transaction holding it stays open meanwhile). */
  snapshot: string;
  dumpDir: string;
  jobs: number;
  selection: Selection;
  signal?: AbortSignal;
  onProgress?: (tablesDone: number, bytesWritten: number) => void;
}

/** pg_dump's arguments: the exported snapshot, directory format, the subset as exact -N/-T names. */
export function dumpArgs(p: Pick<DumpParams, "source" | "snapshot" | "dumpDir" | "jobs" | "selection">): string[] {
  const args = ["-d", p.source.url, "-Fd", "-f", p.dumpDir, "-j", String(p.jobs), `--snapshot=${p.snapshot}`, "-v"];
  // uncompressed: the dump is read once, on this machine, right away; compression would cost CPU the restore needs
  args.push("-Z", "0", "--no-publications", "--no-subscriptions", "--no-security-labels", "--no-tablespaces");
  for (const s of p.selection.excludedSchemas) args.push(`--exclude-schema=${quoteExact(s)}`);
  for (const r of p.selection.excluded) args.push(`--exclude-table=${quoteExact(r.schema, r.name)}`);
  return args;
}

export async function runDump(p: DumpParams): Promise<void> {
  let done = 0;
  const serial = p.jobs === 1;
  let started = 0;
  const report = async () => p.onProgress?.(serial ? Math.max(0, started - 1) : done, await dirBytes(p.dumpDir).catch(() => 0));
  const timer = setInterval(() => void report(), 500);
  try {
    await runPgProgram(p.bin.path("pg_dump"), dumpArgs(p), {
      env: p.source.password !== undefined ? { PGPASSWORD: p.source.password } : {},
      signal: p.signal,
      onStderrLine: (line) => {
        if (/^pg_dump: finished item \d+ TABLE DATA /.test(line)) done++;
        else if (/^pg_dump: dumping contents of table /.test(line)) started++;
      },
    });
  } finally {
    clearInterval(timer);
  }
}

/** TABLE DATA entries of a dump: dump id -> the rest of its pg_restore -l line ("schema name owner"). */
export async function dumpTableData(bin: PgBinaries, dumpDir: string): Promise<Map<number, string>> {
  const { stdout } = await run(bin.path("pg_restore"), ["-l", dumpDir], { ...spawnIdentity(pgRunAs()), maxBuffer: 256 * 1024 * 1024 });
  const out = new Map<number, string>();
  for (const line of stdout.split("\n")) {
    const m = /^(\d+); \d+ \d+ TABLE DATA (.*)$/.exec(line);
    if (m) out.set(Number(m[1]), m[2]);
  }
  return out;
}
