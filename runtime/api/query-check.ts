import type pg from "pg";
import type { NamedQuery } from "./config";
import { ApiError } from "./errors";
import { queryCapped } from "./exec";

/**
 * Prepares every named query on a replica (parse and analysis against its schema, no execution) and
 * drops it again, so a query that names a missing table or column or does not parse keeps the API
 * from reporting ready, with the query's name, instead of answering 500 on its first call. Parameters
 * are left untyped, as requests send them.
 */
export async function checkNamedQueries(client: pg.ClientBase, queries: Record<string, NamedQuery>): Promise<void> {
  const bad: string[] = [];
  for (const [name, def] of Object.entries(queries)) {
    try {
      // The extended protocol takes one statement only: nothing after a `;` in the config can run.
      await queryCapped(client, `PREPARE cndb_check AS ${def.sql}`, [], 0);
    } catch (e) {
      const err = e as Error & { code?: string };
      if (!err.code || err.code.length !== 5) throw e; // the connection, not the query
      bad.push(`${name}: ${err.message} (SQLSTATE ${err.code})`);
      continue;
    }
    await client.query("DEALLOCATE cndb_check");
  }
  if (bad.length) throw new ApiError(503, "bad_named_query", `named queries that cannot run on this snapshot: ${bad.join("; ")}`.slice(0, 2000));
}

/** Named queries checked once per snapshot id; a failed check is retried on the next call. */
export class NamedQueryChecks {
  private readonly ok = new Map<string, Promise<void>>();

  check(client: pg.ClientBase, snapshotId: string, queries: Record<string, NamedQuery>): Promise<void> {
    let p = this.ok.get(snapshotId);
    if (!p) {
      p = checkNamedQueries(client, queries);
      this.ok.set(snapshotId, p);
      p.catch(() => this.ok.get(snapshotId) === p && this.ok.delete(snapshotId));
    }
    return p;
  }

  keepOnly(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.ok.keys()) if (!keep.has(id)) this.ok.delete(id);
  }
}
