import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux the benchmark runs on

interface Proc {
  ppid: number;
  ticks: number;
}

function snapshot(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of pids) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // after "(comm) ": state ppid ... utime (field 14) stime (field 15)
      out.set(Number(d), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function descendantsOf(root: number, procs: Map<number, Proc>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(pid);
    else children.set(p.ppid, [pid]);
  }
  const mine = new Set<number>([root]);
  const stack = [root];
  while (stack.length) for (const c of children.get(stack.pop()!) ?? []) if (!mine.has(c)) (mine.add(c), stack.push(c));
  return mine;
}

/**
 * How much of the machine's CPU processes outside this benchmark's own process tree used while it
 * ran (sampled from /proc once a second): the benchmark's own load never counts as noise, other
 * users' does. 0.25 means a quarter of all cores were busy with someone else's work.
 */
export class ForeignCpu {
  private last = snapshot();
  private foreignTicks = 0;
  private readonly t0 = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 1000) {
    this.timer = setInterval(() => this.sample(), intervalMs).unref();
  }

  private sample(): void {
    const now = snapshot();
    const mine = descendantsOf(process.pid, now);
    for (const [pid, p] of now) {
      if (mine.has(pid)) continue;
      const before = this.last.get(pid);
      // only processes seen in both samples (a new pid may be a reused one)
      if (before && before.ppid === p.ppid) this.foreignTicks += Math.max(0, p.ticks - before.ticks);
    }
    this.last = now;
  }

  /** Stops sampling; the share of total CPU capacity (0..1) others used since construction. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    const seconds = (performance.now() - this.t0) / 1000;
    return seconds > 0 ? this.foreignTicks / TICKS_PER_SECOND / (os.cpus().length * seconds) : 0;
  }
}
