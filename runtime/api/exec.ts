import pg from "pg";
import { ApiError, fromPgError, isConnectionError } from "./errors";
import type { Param } from "./rows";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Connection = { sync(): void };
const BaseQuery = pg.Query as unknown as new (config: object) => any;

/**
 * A query that stops after `rows` rows on the server side (Execute with a row count, then Sync): a row
 * cap that never materializes a huge result. Always the extended protocol, so the text must be one
 * statement (PostgreSQL refuses several in one Parse).
 */
class CappedQuery extends BaseQuery {
  private synced = false;

  handlePortalSuspended(connection: Connection): void {
    this.sync(connection);
  }
  handleCommandComplete(msg: unknown, connection: Connection): void {
    this.synced = true; // the base class syncs when `rows` is set
    super.handleCommandComplete(msg, connection);
  }
  handleEmptyQuery(connection: Connection): void {
    this.synced = true;
    super.handleEmptyQuery(connection);
  }
  handleError(err: Error, connection: Connection): void {
    // Without a Sync after an error the server waits forever and so would we.
    this.sync(connection);
    super.handleError(err, connection);
  }
  private sync(connection: Connection): void {
    if (this.synced) return;
    this.synced = true;
    connection.sync();
  }
}

export interface CappedResult {
  fields: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

/** Runs one statement and returns at most `cap` rows (`truncated` when there were more). */
export function queryCapped(client: pg.ClientBase, text: string, values: unknown[], cap: number): Promise<CappedResult> {
  return new Promise((resolve, reject) => {
    const q = new CappedQuery({
      text,
      values,
      rows: cap + 1,
      callback: (err: Error | null, res: pg.QueryResult) => {
        if (err) return reject(err);
        const rows = res.rows as Record<string, unknown>[];
        resolve({ fields: res.fields.map((f) => f.name), rows: rows.slice(0, cap), truncated: rows.length > cap });
      },
    });
    client.query(q as unknown as pg.Submittable);
  });
}

/**
 * `BEGIN READ ONLY` + `SET LOCAL statement_timeout`, then `fn`, then always ROLLBACK: whatever `fn`
 * ran (even a SET or set_config) leaves no trace on the pooled session.
 */
export async function readOnly<T>(client: pg.ClientBase, timeoutMs: number | undefined, fn: () => Promise<T>): Promise<T> {
  // one round trip for both (simple protocol, no parameters)
  const begin = timeoutMs === undefined ? "BEGIN READ ONLY" : `BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}`;
  await client.query(begin).catch(async (e) => {
    await client.query("ROLLBACK").catch(() => undefined); // if BEGIN ran and SET did not
    throw e;
  });
  try {
    return await fn();
  } finally {
    await client.query("ROLLBACK");
  }
}

/**
 * Turns a failed query into the ApiError that names the culprit. When PostgreSQL rejected a value
 * (SQLSTATE 22xxx and kin) and several parameters could be to blame, each is cast alone to its type
 * (only on this error path) to find the one. Connection errors and our own faults pass through.
 */
export async function explainFailure(e: unknown, client: pg.ClientBase, params: Param[], opts: { timeoutMs?: number; userSql?: boolean } = {}): Promise<unknown> {
  if (e instanceof ApiError || isConnectionError(e)) return e;
  const code = (e as { code?: string }).code ?? "";
  if (code.startsWith("22") && params.length) {
    const culprit = params.length === 1 ? params[0] : await findBadParam(client, params);
    if (culprit) {
      return new ApiError(400, culprit.code, `bad value for ${culprit.field}: ${(e as Error).message}`, culprit.field);
    }
  }
  return fromPgError(e, opts) ?? e;
}

async function findBadParam(client: pg.ClientBase, params: Param[]): Promise<Param | undefined> {
  for (const p of params) {
    try {
      await client.query(`SELECT $1::${p.cast}`, [p.value]);
    } catch (e) {
      if (isConnectionError(e)) throw e;
      return p;
    }
  }
  return undefined;
}

/** Prepared statements per pooled connection: names by SQL text, at most PREPARED_PER_CONNECTION. */
const prepared = new WeakMap<object, Map<string, string>>();
export const PREPARED_PER_CONNECTION = 200;

/**
 * A statement name for `text` on this connection, so PostgreSQL parses and plans it once per connection
 * rather than per request (a replica's schema never changes, so a prepared plan never goes stale). Past
 * the cap, new texts run unnamed: arbitrary filter shapes cannot grow the sessions without bound.
 */
export function statementName(client: object, text: string): string | undefined {
  let names = prepared.get(client);
  if (!names) prepared.set(client, (names = new Map()));
  let name = names.get(text);
  if (name === undefined && names.size < PREPARED_PER_CONNECTION) names.set(text, (name = `cndb_${names.size}`));
  return name;
}
