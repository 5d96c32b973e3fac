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
