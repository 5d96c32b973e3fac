import { InvalidArgumentError, type Command } from "commander";
import { bake, BakeError, formatProgress, type BakeResult } from "./index";
import { formatBytes } from "./progress";

const collect = (v: string, prev: string[] = []) => [...prev, v];

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 64) throw new InvalidArgumentError("expected a whole number from 1 to 64");
  return n;
}

/** The final line: snapshot id, tables, rows, bytes, time. */
export function summaryLine(r: BakeResult): string {
  const m = r.manifest;
  const rows = m.tables.filter((t) => t.kind !== "partitioned").reduce((a, t) => a + t.rows, 0);
  return `baked snapshot ${m.id}: ${m.tables.length} tables, ${rows} rows, ${formatBytes(m.pgdataBytes)} PGDATA in ${(r.elapsedMs / 1000).toFixed(1)}s -> ${r.dir}` +
    (m.image?.ref ? ` (pushed ${m.image.ref})` : m.image ? " (+ OCI image)" : "");
}

export function register(program: Command): void {
  program
    .command("bake")
    .description("dump the master in one consistent snapshot, restore, freeze and verify it as a read-only PGDATA (optionally an OCI image)")
    .option("--source <url>", "master: postgres://user@host:port/database (password in the URL, PGPASSWORD or --source-secret-arn)")
    .requiredOption("--out <dir>", "snapshot directory to write: <dir>/pgdata, <dir>/snapshot.json (an existing snapshot there is replaced only on success)")
    .option("--jobs <n>", "parallel dump/restore jobs (default: CPU count)", positiveInt)
    .option("--schema <pattern>", "bake only this schema (repeatable; psql pattern rules)", collect)
    .option("--include-table <pattern>", "bake only matching tables, [schema.]name (repeatable)", collect)
    .option("--exclude-table <pattern>", "leave matching tables out (repeatable)", collect)
    .option("--image", "also write an OCI image layout to <dir>/image")
    .option("--base-image <ref>", "PostgreSQL base image for --image (default: the data layer alone)")
    .option("--push <ref>", "push the image to registry/repository[:tag] (tag: the snapshot id); implies --image")
    .option("--reader-password-env <name>", "environment variable holding the reader role's password (without: local/loopback access only)")
    .option("--source-secret-arn <arn>", "read the master's {username, password} from this AWS Secrets Manager secret")
    .option("--json", "print the result as JSON on stdout")
    .action(async (o: {
      source?: string; out: string; jobs?: number; schema?: string[]; includeTable?: string[]; excludeTable?: string[];
      image?: boolean; baseImage?: string; push?: string; readerPasswordEnv?: string; sourceSecretArn?: string; json?: boolean;
    }) => {
      const ac = new AbortController();
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        if (++signals > 1) process.exit(sig === "SIGINT" ? 130 : 143); // a second signal: stop waiting for cleanup
        process.stderr.write(`cndb bake: ${sig}: stopping and cleaning up\n`);
        ac.abort(sig);
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const result = await bake({
          source: o.source ?? "",
          out: o.out,
          jobs: o.jobs,
          schemas: o.schema,
          includeTables: o.includeTable,
          excludeTables: o.excludeTable,
          image: o.image || !!o.push || !!o.baseImage,
          baseImage: o.baseImage,
          push: o.push,
          readerPasswordEnv: o.readerPasswordEnv,
          sourceSecretArn: o.sourceSecretArn,
          signal: ac.signal,
          onProgress: (e) => process.stderr.write(formatProgress(e) + "\n"),
        });
        process.stderr.write(summaryLine(result) + "\n");
        if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
      } catch (e) {
        if (e instanceof BakeError && e.code === "aborted") {
          process.stderr.write(`cndb: ${e.message}\n`);
          process.exit(ac.signal.reason === "SIGTERM" ? 143 : 130);
        }
        throw e;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
