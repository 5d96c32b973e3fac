import { readFileSync } from "node:fs";
import os from "node:os";
import { findPgBinaries } from "../../runtime/pg/binaries";
import { run } from "./proc";

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  /** Filesystem type and mount options of the benchmark work directory. */
  filesystem: string;
  node: string;
  /** 1-minute load average at the start and the end of the benchmark: high means noisy numbers. */
  loadStart: number;
  loadEnd?: number;
  /** Share of all cores (0..1) that processes outside the benchmark's own tree used while it ran. */
  foreignCpu?: number;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown";
}

async function osName(): Promise<string> {
  try {
    const m = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync("/etc/os-release", "utf8"));
    if (m) return m[1];
  } catch {
    // fall through
  }
  return `${os.type()} ${os.release()}`;
}

export async function filesystemOf(dir: string): Promise<string> {
  try {
    const { stdout } = await run("findmnt", ["-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", dir]);
    const [type, source, options] = stdout.trim().split(/\s+/);
    return `${type} (${source}, ${options})`;
  } catch {
    return "unknown";
  }
}

export async function machineInfo(workRoot: string): Promise<MachineInfo> {
  return {
    cpu: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    os: await osName(),
    filesystem: await filesystemOf(workRoot),
    node: process.version,
    loadStart: os.loadavg()[0],
  };
}

/** `postgres --version` of the binaries every server in the run uses. */
export async function postgresVersion(): Promise<string> {
  const bin = await findPgBinaries();
  const { stdout } = await run(bin.path("postgres"), ["--version"]);
  return `${stdout.trim()} (${bin.bindir})`;
}
