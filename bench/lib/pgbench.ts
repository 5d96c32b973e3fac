import { writeFileSync } from "node:fs";
import path from "node:path";
import { runPg } from "./proc";

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
}

/**
 * The select-heavy custom script (-f): a point lookup, a filtered list on the (bid, aid) index, a
 * short range aggregate and a join, per transaction. Read-only, so it runs on every arm.
 */
export const SELECT_SCRIPT = `\\set aid random(1, 100000 * :scale)
\\set bid random(1, :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT aid, abalance FROM pgbench_accounts WHERE bid = :bid ORDER BY aid LIMIT 20;
SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 1000;
SELECT b.bbalance, a.abalance FROM pgbench_accounts a JOIN pgbench_branches b USING (bid) WHERE a.aid = :aid;
`;

export function writeScript(dir: string): string {
  const file = path.join(dir, "select-heavy.sql");
  writeFileSync(file, SELECT_SCRIPT, { mode: 0o644 });
  return file;
}

/** One bounded pgbench run (-T seconds, no vacuum: standbys refuse it) against a conninfo URL. */
export async function pgbench(url: string, args: string[], seconds: number): Promise<PgbenchResult> {
  const r = await runPg("pgbench", ["-n", "-T", String(seconds), ...args, url], { timeoutMs: (seconds + 60) * 1000 });
  const tps = /^tps = ([\d.]+) \(without initial connection time\)/m.exec(r.stdout);
  const lat = /^latency average = ([\d.]+) ms/m.exec(r.stdout);
  const n = /^number of transactions actually processed: (\d+)/m.exec(r.stdout);
  if (!tps) throw new Error(`pgbench printed no tps line:\n${r.stdout}\n${r.stderr}`);
  const failed = /^number of failed transactions: (\d+)/m.exec(r.stdout);
  if (failed && Number(failed[1]) > 0) throw new Error(`pgbench: ${failed[1]} failed transactions:\n${r.stderr.slice(-500)}`);
  return { tps: Number(tps[1]), latencyMs: lat ? Number(lat[1]) : NaN, transactions: n ? Number(n[1]) : NaN };
}
