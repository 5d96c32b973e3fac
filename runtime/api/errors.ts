/** Every error the API answers with: `{ error: { code, message, field? } }` and a 4xx (5xx only for our own faults). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }

  body(): { error: { code: string; message: string; field?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.field !== undefined ? { field: this.field } : {}) } };
  }
}

export const badRequest = (code: string, message: string, field?: string) => new ApiError(400, code, message, field);

/** Echoes user input in messages without letting a hostile value flood a log line or a response. */
export function show(value: string, max = 80): string {
  const s = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(s);
}

/** A pg driver or PostgreSQL error: `code` is a SQLSTATE (5 chars) or a Node errno string. */
export interface PgLikeError extends Error {
  code?: string;
}

const NODE_CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOENT", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

/**
 * True when the replica (not the request) failed: it is unreachable, shutting down or dropped the
 * connection. Such errors mark the replica down and the request is retried elsewhere. 08P01 (protocol
 * violation, e.g. a wrong parameter count) is the request's fault and is NOT one of them.
 */
export function isConnectionError(e: unknown): boolean {
  if (e instanceof ApiError) return false;
  const err = e as PgLikeError;
  const code = err?.code;
  if (code && NODE_CONNECTION_CODES.has(code)) return true;
  if (code && ["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"].includes(code)) return true;
  const msg = String(err?.message ?? "");
  return !code && /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end/i.test(msg);
}

/**
 * Maps a PostgreSQL error caused by the request's input to an ApiError; undefined for anything else
 * (our fault or the replica's: the caller answers 5xx). `field` names the input when known.
 */
export function fromPgError(e: unknown, opts: { field?: string; timeoutMs?: number; userSql?: boolean } = {}): ApiError | undefined {
  const err = e as PgLikeError;
  const code = err?.code;
  if (!code || code.length !== 5) return undefined;
  const msg = err.message;
  if (code === "57014") {
    return new ApiError(
      408,
      "statement_timeout",
      `the query ran longer than the statement timeout${opts.timeoutMs ? ` (${opts.timeoutMs} ms)` : ""} and was cancelled; narrow the filters or lower the limit`,
    );
  }
  // 25006 mostly, but a standby also refuses some writes with XX000 ("cannot assign OIDs during recovery").
  if (code === "25006" || code === "25P02" || code === "2F003" || /read-only transaction|during recovery|read-write/i.test(msg)) {
    return new ApiError(403, "read_only", `writes are refused: this API only reads (${msg})`);
  }
  if (code.startsWith("22")) return badRequest("invalid_value", opts.field ? `bad value for ${opts.field}: ${msg}` : `bad value: ${msg}`, opts.field);
  if (code === "42883" || code === "42804") {
    return badRequest("unsupported_operator", `the operator does not apply to this column's type: ${msg}`, opts.field);
  }
  if (code === "54000" || code === "54001") return badRequest("too_complex", `the request is too large or complex: ${msg}`, opts.field);
  if (code === "08P01") return badRequest("bad_params", `the parameters do not match the statement: ${msg}`, opts.field);
  if (opts.userSql) {
    if (code === "42601" && /multiple commands/.test(msg)) {
      return badRequest("multiple_statements", "sql must hold exactly one statement", "sql");
    }
    if (code === "42501") return new ApiError(403, "permission_denied", msg, "sql");
    if (code.startsWith("42") || code.startsWith("25") || code.startsWith("0A") || code.startsWith("2B") || code.startsWith("34") || code.startsWith("26")) {
      return badRequest("sql_error", `${msg} (SQLSTATE ${code})`, "sql");
    }
    if (code.startsWith("53")) return badRequest("too_expensive", `${msg} (SQLSTATE ${code})`, "sql");
  }
  return undefined;
}
