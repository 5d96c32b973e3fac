export type BakePhase = "connect" | "dump" | "restore" | "freeze" | "verify" | "image" | "push" | "install";

/** One progress report; `kind` "start"/"end" bracket a phase, "progress" repeats (throttled), "note" is a remark. */
export interface BakeProgress {
  phase: BakePhase;
  kind: "start" | "progress" | "end" | "note";
  /** Since the bake started. */
  elapsedMs: number;
  /** Since this phase started. */
  phaseElapsedMs: number;
  tablesDone?: number;
  tablesTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
  message?: string;
}

type Counts = Pick<BakeProgress, "tablesDone" | "tablesTotal" | "bytesDone" | "bytesTotal" | "message">;

/** Emits phase events with elapsed times; progress reports at most every `everyMs` per phase. */
export class ProgressReporter {
  private readonly started = Date.now();
  private phaseStarted = Date.now();
  private phase: BakePhase = "connect";
  private lastProgress = 0;

  constructor(
    private readonly sink?: (e: BakeProgress) => void,
    private readonly everyMs = 500,
  ) {}

  get elapsedMs(): number {
    return Date.now() - this.started;
  }

  start(phase: BakePhase, counts: Counts = {}): void {
    this.phase = phase;
    this.phaseStarted = Date.now();
    this.lastProgress = 0;
    this.emit("start", counts);
  }

  progress(counts: Counts, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastProgress < this.everyMs) return;
    this.lastProgress = now;
    this.emit("progress", counts);
  }

  end(counts: Counts = {}): void {
    this.emit("end", counts);
  }

  note(message: string): void {
    this.emit("note", { message });
  }

  private emit(kind: BakeProgress["kind"], counts: Counts): void {
    if (!this.sink) return;
    const now = Date.now();
    try {
      this.sink({ phase: this.phase, kind, elapsedMs: now - this.started, phaseElapsedMs: now - this.phaseStarted, ...counts });
    } catch {
      // a failing progress sink must not fail the bake
    }
  }
}

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** One stderr line for a progress event, e.g. `[   4.2s] restore: 3/10 tables, 1.2 MB of 4.0 MB`. */
export function formatProgress(e: BakeProgress): string {
  const t = `[${(e.elapsedMs / 1000).toFixed(1).padStart(6)}s]`;
  const parts: string[] = [];
  if (e.tablesTotal !== undefined) parts.push(`${e.tablesDone ?? 0}/${e.tablesTotal} tables`);
  if (e.bytesTotal !== undefined) parts.push(`${formatBytes(e.bytesDone ?? 0)} of ${formatBytes(e.bytesTotal)}`);
  else if (e.bytesDone !== undefined) parts.push(formatBytes(e.bytesDone));
  if (e.message) parts.push(e.message);
  const what = e.kind === "start" ? "started" : e.kind === "end" ? `done in ${(e.phaseElapsedMs / 1000).toFixed(1)}s` : e.kind === "note" ? "note" : "";
  return `${t} ${e.phase}${what ? ` ${what}` : ""}${parts.length ? `: ${parts.join(", ")}` : ""}`;
}
