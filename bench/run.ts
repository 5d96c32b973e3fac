/**
 * `npm run bench [-- --size small|medium|large] [--only B1,B3] [--rounds N] [--work-dir DIR] [--report]`
 * Runs the benchmarks, writes raw samples to bench/results/<time>-<bench>.json and regenerates
 * bench/RESULTS.md from the newest result of each benchmark.
 */
import { Command, InvalidArgumentError } from "commander";
import { existsSync, statSync } from "node:fs";
import os from "node:os";
import { b1 } from "./b1-scale-out";
import { b2 } from "./b2-read-throughput";
import { b3 } from "./b3-first-read";
import { b4 } from "./b4-bake";
import { b5 } from "./b5-read-api";
import { b6 } from "./b6-propagation";
import { BenchContext, PROFILES, SIZE_NAMES, type Bench, type SizeName } from "./lib/context";
import { machineInfo, postgresVersion } from "./lib/machine";
import { ForeignCpu } from "./lib/noise";
import { defaultWorkRoot } from "./lib/proc";
import { RESULTS_MD, writeResult, writeResultsMd, type BenchResult } from "./lib/report";

export const BENCHES: Bench[] = [b1, b2, b3, b4, b5, b6];
const READERS = Object.fromEntries(BENCHES.map((b) => [b.id, b.reading]));

function parseSize(v: string): SizeName {
  if (!(SIZE_NAMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${SIZE_NAMES.join(", ")}`);
  return v as SizeName;
}

function parseRounds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new InvalidArgumentError("must be an integer from 1 to 100");
  return n;
}

function parseOnly(v: string): string[] {
  const ids = v.split(",").map((x) => x.trim().toUpperCase()).filter(Boolean);
  const known = BENCHES.map((b) => b.id);
  const bad = ids.filter((id) => !known.includes(id));
  if (bad.length || ids.length === 0) throw new InvalidArgumentError(`unknown benchmark ${bad.join(", ") || "(none)"}; known: ${known.join(", ")}`);
  return ids;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command("bench")
    .description("container-native-db benchmarks (see bench/RESULTS.md)")
    .option("--size <name>", `dataset sizes: ${SIZE_NAMES.join(" | ")}`, parseSize, "small" as SizeName)
    .option("--only <ids>", `comma-separated subset of ${BENCHES.map((b) => b.id).join(",")}`, parseOnly)
    .option("--rounds <n>", "interleaved rounds per arm (default: per size)", parseRounds)
    .option("--work-dir <dir>", "where servers, dumps and snapshots go (CNDB_BENCH_DIR)", defaultWorkRoot())
    .option("--drop-caches", "drop the OS page cache before each cold-start sample of B1 and B3 (root; affects the whole machine)")
    .option("--report", "only regenerate bench/RESULTS.md from bench/results/*.json")
    .showHelpAfterError();
  program.parse(argv);
  const o = program.opts<{ size: SizeName; only?: string[]; rounds?: number; workDir: string; report?: boolean; dropCaches?: boolean }>();

  if (o.report) {
    writeResultsMd(READERS);
    console.log(`wrote ${RESULTS_MD}`);
    return;
  }
  if (!existsSync(o.workDir) || !statSync(o.workDir).isDirectory()) program.error(`--work-dir: ${o.workDir} is not a directory`);
  if (process.getuid?.() !== 0) {
    console.error("bench: warning: not root; B3 (overlay and loop mounts) and the overlay arms will be skipped");
  }
  const profile = PROFILES[o.size];
  const rounds = o.rounds ?? profile.rounds;
  const selected = BENCHES.filter((b) => !o.only || o.only.includes(b.id));
  const command = `npm run bench${argv.length > 2 ? " -- " + argv.slice(2).join(" ") : ""}`;
  if (o.dropCaches && process.getuid?.() !== 0) program.error("--drop-caches: needs root (writes /proc/sys/vm/drop_caches)");
  const ctx = new BenchContext(o.size, profile, rounds, o.workDir, o.dropCaches ?? false);
  const postgres = await postgresVersion();
  const t0 = Date.now();
  const written: string[] = [];
  try {
    for (const bench of selected) {
      const machine = await machineInfo(o.workDir);
      const foreign = new ForeignCpu();
      const startedAt = new Date().toISOString();
      ctx.log(`${bench.id} ${bench.title} (size ${o.size}, ${rounds} rounds)`);
      let result: BenchResult;
      try {
        const out = await bench.run(ctx);
        machine.loadEnd = os.loadavg()[0];
        machine.foreignCpu = foreign.stop();
        const finishedAt = new Date().toISOString();
        const options = { size: o.size, rounds, dropCaches: o.dropCaches ?? false };
        result = { bench: bench.id, name: bench.name, title: bench.title, startedAt, finishedAt, command, options, machine, postgres, ...out, reading: bench.reading(out) };
      } catch (e) {
        foreign.stop();
        ctx.log(`${bench.id} failed: ${(e as Error).stack ?? e}`);
        process.exitCode = 1;
        continue;
      }
      const file = writeResult(result);
      written.push(file);
      ctx.log(`${bench.id} done in ${((Date.parse(result.finishedAt) - Date.parse(startedAt)) / 1000).toFixed(0)} s -> ${file}`);
    }
  } finally {
    await ctx.close();
  }
  if (written.length) writeResultsMd(READERS);
  ctx.log(`all done in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${written.length} result file(s); ${RESULTS_MD} regenerated`);
}

main(process.argv).catch((e: Error) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
