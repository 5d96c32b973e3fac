/** Why a bake failed, so callers (the CLI, local mode) can react without parsing messages. */
export type BakeErrorCode =
  | "option" // bad input: an option's value, a pattern matching nothing, an unusable --out
  | "source-unreachable"
  | "source-auth"
  | "source-database"
  | "version" // pg_dump older than the master
  | "binaries" // PostgreSQL programs missing
  | "no-space"
  | "aborted" // SIGINT/SIGTERM or the caller's AbortSignal
  | "subset" // the chosen subset cannot be restored on its own (FK, inheritance, partition)
  | "dump"
  | "restore"
  | "verify"
  | "image";

export class BakeError extends Error {
  constructor(
    readonly code: BakeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "BakeError";
  }
}

const ENOSPC = /No space left on device|ENOSPC|could not extend file|disk full/i;

/** Turns a failure into a BakeError, recognising a full disk whatever step hit it. */
export function asBakeError(e: unknown, code: BakeErrorCode, where: string, signal?: AbortSignal): BakeError {
  if (signal?.aborted) return abortError(signal);
  if (e instanceof BakeError) return e;
  const err = e as Error & { code?: string };
  const msg = err?.message ?? String(e);
  if (err?.code === "ENOSPC" || ENOSPC.test(msg)) {
    return new BakeError("no-space", `no space left on device while ${where}: free some space or choose --out on a larger filesystem (${firstLine(msg)})`);
  }
  return new BakeError(code, `${where} failed: ${msg}`);
}

export function abortError(signal: AbortSignal): BakeError {
  const r = signal.reason as unknown;
  const why = typeof r === "string" ? r : r instanceof Error && r.name !== "AbortError" ? r.message : "aborted";
  return new BakeError("aborted", `bake interrupted (${why}); nothing was left behind`);
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

function firstLine(s: string): string {
  const l = s.split("\n").find((x) => ENOSPC.test(x)) ?? s.split("\n")[0];
  return l.trim().slice(0, 300);
}
