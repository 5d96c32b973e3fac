import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describeProfiles } from "./context";
import type { DatasetInfo } from "./dataset";
import type { MachineInfo } from "./machine";
import { ratio, summarize, type Summary } from "./stats";

/** One arm's raw samples in one table (one per round). */
export interface ArmSamples {
  arm: string;
  samples: number[];
  /** What the arm is, in a few words (shown under the table). */
  note?: string;
  /** Parameter point (e.g. dataset size); ratios are taken against the baseline arm of the same group. */
  group?: string;
}

/** One metric at one parameter point, all arms side by side: one table in RESULTS.md. */
export interface ResultTable {
  title: string;
  unit: Unit;
  better: "lower" | "higher";
  /** The arm every ratio is taken against (within each group). */
  baseline: string;
  /** Column heading of ArmSamples.group, e.g. "dataset". */
  groupLabel?: string;
  arms: ArmSamples[];
}

export type Unit = "ms" | "s" | "bytes" | "tps" | "req/s" | "ratio" | "s/GB";

export interface BenchResult {
  bench: string;
  name: string;
  title: string;
  startedAt: string;
  finishedAt: string;
  /** The exact command line that produced it. */
  command: string;
  options: { size: string; rounds: number; dropCaches?: boolean };
  machine: MachineInfo;
  postgres: string;
  datasets: DatasetInfo[];
  tables: ResultTable[];
  /** Arms not run, and why. */
  skipped: { arm: string; reason: string }[];
  notes: string[];
  /** What the numbers say, written from them at run time (worse results said as such). */
  reading: string[];
}

export const RESULTS_DIR = path.join(__dirname, "..", "results");
export const RESULTS_MD = path.join(__dirname, "..", "RESULTS.md");

export function writeResult(result: BenchResult, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const stamp = result.startedAt.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const file = path.join(dir, `${stamp}-${result.bench}-${result.name}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  return file;
}

/** The newest result file of each benchmark (file names sort by time). */
export function latestResults(dir = RESULTS_DIR): { file: string; result: BenchResult }[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  } catch {
    return [];
  }
  const byBench = new Map<string, string>();
  for (const f of files) {
    const m = /^\d{8}T\d{6}Z-(B\d+)-/.exec(f);
    if (m) byBench.set(m[1], f);
  }
  return [...byBench.entries()]
    .sort(([a], [b]) => Number(a.slice(1)) - Number(b.slice(1)))
    .map(([, f]) => ({ file: f, result: JSON.parse(readFileSync(path.join(dir, f), "utf8")) as BenchResult }));
}

// ---- formatting ----

export function fmt(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return "–";
  switch (unit) {
    case "ms":
      return v >= 100 ? `${v.toFixed(0)} ms` : v >= 1 ? `${v.toFixed(1)} ms` : `${v.toFixed(3)} ms`;
    case "s":
    case "s/GB":
      return `${v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${unit}`;
    case "bytes":
      return fmtBytes(v);
    case "tps":
    case "req/s":
      return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${unit}`;
    case "ratio":
      return v.toFixed(3);
  }
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return "–";
  if (b === 0) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(Math.abs(b)) / Math.log(1024)));
  const x = b / 1024 ** i;
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)} ${units[i]}`;
}

/** "0.12× (8.3× faster)", "0.84× (16% lower, worse)": the raw ratio, then what it means for this metric. */
export function fmtRatio(r: number, better: "lower" | "higher", isBaseline: boolean, unit: Unit = "ratio"): string {
  if (isBaseline) return "1 (baseline)";
  if (r === 0) return "0 (none)";
  if (!Number.isFinite(r)) return "–";
  const raw = r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r >= 0.01 ? r.toFixed(2) : r.toExponential(1);
  if (Math.abs(r - 1) < 0.005) return `${raw}× (same)`;
  const good = better === "lower" ? r < 1 : r > 1;
  const up = r > 1;
  const words = unit === "ms" || unit === "s" || unit === "s/GB" ? (up ? "slower" : "faster") : unit === "bytes" ? (up ? "larger" : "smaller") : up ? "higher" : "lower";
  const factor = up ? r : 1 / r;
  const size = factor < 2 ? `${(Math.abs(r - 1) * 100).toFixed(0)}%` : `${factor >= 10 ? factor.toFixed(0) : factor.toFixed(1)}×`;
  return `${raw}× (${size} ${words}${good ? "" : ", worse"})`;
}

export function tableSummaries(t: ResultTable): { arm: ArmSamples; s: Summary; r: number }[] {
  return t.arms.map((a) => {
    const base = t.arms.find((b) => b.arm === t.baseline && b.group === a.group);
    const s = summarize(a.samples);
    return { arm: a, s, r: ratio(s, summarize(base?.samples ?? [])) };
  });
}

function renderTable(t: ResultTable): string {
  const lines = [
    `**${t.title}** (${t.better} is better; ratio = median ÷ median of \`${t.baseline}\`)`,
    "",
  ];
  const grouped = t.arms.some((a) => a.group !== undefined);
  const g = grouped ? [t.groupLabel ?? "group"] : [];
  lines.push(`| ${[...g, "arm", "n", "median", "min – max", "p25 – p75", "ratio to baseline"].join(" | ")} |`);
  lines.push(`| ${[...g.map(() => "---"), "---", "---:", "---:", "---:", "---:", "---"].join(" | ")} |`);
  for (const { arm, s, r } of tableSummaries(t)) {
    const spread = s.n ? `${fmt(s.min, t.unit)} – ${fmt(s.max, t.unit)}` : "–";
    const iqr = s.n ? `${fmt(s.p25, t.unit)} – ${fmt(s.p75, t.unit)}` : "–";
    const cells = [...(grouped ? [arm.group ?? ""] : []), arm.arm, s.n, fmt(s.median, t.unit), spread, iqr, fmtRatio(r, t.better, arm.arm === t.baseline, t.unit)];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Noisy: others used over 10% of the CPU during the run (or, for results without that, a high load average). */
function busy(m: MachineInfo): boolean {
  if (m.foreignCpu !== undefined) return m.foreignCpu > 0.1;
  return Math.max(m.loadStart, m.loadEnd ?? 0) > 0.3 * m.cores;
}

function busyText(m: MachineInfo): string {
  return m.foreignCpu !== undefined
    ? `other processes used ${(m.foreignCpu * 100).toFixed(0)}% of the ${m.cores} cores while it ran; 1-min load ${m.loadStart.toFixed(1)} at start`
    : `1-min load ${m.loadStart.toFixed(1)} at start, ${(m.loadEnd ?? NaN).toFixed(1)} at end, on ${m.cores} cores`;
}

export type Reader = (r: Pick<BenchResult, "tables" | "skipped">) => string[];

export function renderBench(file: string, r: BenchResult, reader?: Reader): string {
  const m = r.machine;
  const out: string[] = [`## ${r.bench} ${r.title}`, ""];
  if (busy(m)) {
    out.push(
      `> **Noisy:** the machine was busy during this run (${busyText(m)}). ` +
        "Treat the numbers as indicative only; rerun on a quiet machine.",
      "",
    );
  }
  out.push(
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, kernel ${m.kernel}, ${m.os}; work dir on ${m.filesystem}; Node ${m.node}` +
      (m.foreignCpu !== undefined ? `; other processes' CPU during the run: ${(m.foreignCpu * 100).toFixed(0)}%` : ""),
    `- PostgreSQL: ${r.postgres}`,
    ...r.datasets.map((d) => `- dataset \`${d.label}\`: ${d.description}; ${d.rows.toLocaleString("en")} accounts rows, database ${fmtBytes(d.dbBytes)}`),
    `- command: \`${r.command}\` (size \`${r.options.size}\`, ${r.options.rounds} interleaved rounds${r.options.dropCaches ? ", page cache dropped before each cold-start sample" : ""}); run ${r.startedAt} – ${r.finishedAt}; raw samples: [results/${file}](results/${file})`,
    "",
  );
  for (const t of r.tables) out.push(renderTable(t), "");
  const armNotes = new Map<string, string>();
  for (const t of r.tables) for (const a of t.arms) if (a.note && !armNotes.has(a.arm)) armNotes.set(a.arm, a.note);
  if (armNotes.size) {
    out.push("Arms:", "");
    for (const [arm, note] of armNotes) out.push(`- \`${arm}\`: ${note}`);
    out.push("");
  }
  if (r.skipped.length) {
    out.push("Not measured:", "");
    for (const s of r.skipped) out.push(`- \`${s.arm}\`: ${s.reason}`);
    out.push("");
  }
  if (r.notes.length) {
    out.push("Notes:", "");
    for (const n of r.notes) out.push(`- ${n}`);
    out.push("");
  }
  const reading = reader ? reader(r) : r.reading;
  if (reading.length) out.push("**Reading.** " + reading.join(" "), "");
  return out.join("\n");
}

const header = () => `# Benchmarks

Container-native read replicas (a baked PGDATA in an image, started read-only) against what a user
would otherwise pick: a streaming hot standby (\`pg_basebackup\`), a \`pg_dump\` restored at start, the
raw \`pg_dump -Fd -j | pg_restore -j\`, direct PostgreSQL queries. All on one machine, all servers on
127.0.0.1, ratios against a named baseline. Generated by \`npm run bench\` from the newest file of each
benchmark in [results/](results/); do not edit by hand.

## How to reproduce

\`\`\`sh
apt-get install -y postgresql xfsprogs   # PostgreSQL 15 (Debian 12); xfsprogs for B3's reflink arm
npm ci
npm run bench                            # all benchmarks, size "small": about 10 minutes on 2 cores
npm run bench -- --only B1,B3 --rounds 5 # a subset, more rounds
npm run bench -- --size large            # the issue's sizes: about 100 MB, 500 MB and 2 GB (long)
npm run bench -- --drop-caches           # B1/B3 samples start with a cold page cache (slows the whole machine)
npm run bench -- --report                # only regenerate this file from bench/results/*.json
\`\`\`

Run as root (PostgreSQL itself runs as the \`postgres\` account; B3 mounts overlay and loop
filesystems). Work files go to \`/var/tmp\` (or \`--work-dir\` / \`CNDB_BENCH_DIR\`) and are removed at
the end. Sizes (\`--size\`): ${describeProfiles()}. Dataset sizes are targets for
\`pgbench -i -s N\` plus one index (the exact database size is listed per benchmark). Rounds are
interleaved: each round runs every arm once, the starting arm rotating (ABC, BCA, CAB, ...), so slow
drift of a shared machine hits all arms alike. Each table shows the median, min – max and the
interquartile range over the rounds. A benchmark during which processes other than its own used more
than 10% of the machine's CPU (sampled from /proc) is marked **Noisy**.
`;

/** RESULTS.md from the newest result of each benchmark; readers (by bench id) rewrite the readings with current code. */
export function renderResultsMd(dir = RESULTS_DIR, readers: Record<string, Reader> = {}): string {
  const latest = latestResults(dir);
  const body = latest.length
    ? latest.map(({ file, result }) => renderBench(file, result, readers[result.bench])).join("\n")
    : "_No results yet: run `npm run bench`._\n";
  const noisy = latest.filter(({ result }) => busy(result.machine)).map(({ result }) => result.bench);
  const status = noisy.length
    ? `> **Status: not final.** ${noisy.join(", ")} below come from a run on a busy shared machine (marked **Noisy**): development numbers, indicative only. The final numbers come from a run on a quiet machine.\n\n`
    : "";
  return `${header()}\n${status}${body}`;
}

export function writeResultsMd(readers: Record<string, Reader> = {}, dir = RESULTS_DIR, file = RESULTS_MD): void {
  writeFileSync(file, renderResultsMd(dir, readers));
}
