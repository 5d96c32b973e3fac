import type pg from "pg";
import { throwIfAborted } from "./errors";
import { quoteExact } from "./patterns";

/**
 * The checksum is computed from each row's text form, so both sides must print values the same way:
 * these settings pin every GUC that changes a type's output (time zones, date/interval styles, float
 * digits, money, bytea, regclass names via search_path).
 */
export const CHECKSUM_SESSION = [
  "SET TimeZone = 'UTC'",
  "SET DateStyle = 'ISO, YMD'",
  "SET IntervalStyle = 'postgres'",
  "SET extra_float_digits = 1",
  "SET lc_monetary = 'C'",
  "SET bytea_output = 'hex'",
  "SET search_path = pg_catalog",
  // the master's own limits must not cut a long checksum or the snapshot transaction waiting for pg_dump
  "SET statement_timeout = 0",
  "SET idle_in_transaction_session_timeout = 0",
].join("; ");

export interface Summable {
  schema: string;
  name: string;
  /** r: rows of this table only (ONLY: inheritance children are tables of their own); p: the whole tree; m: a matview. */
  kind: "r" | "p" | "m";
  unpopulated?: boolean;
}

export interface Sum {
  rows: number;
  checksum: string;
}

/** An unpopulated matview cannot be read; both sides report it so. */
export const UNPOPULATED = "unpopulated";

/**
 * Count and an order-independent content checksum in one pass, no sort: the sum of the first 64 bits
 * of md5(row text) as numeric (so it never overflows), prefixed with the algorithm's name.
 */
export function checksumSql(t: Summable): string {
  const from = `${t.kind === "r" ? "ONLY " : ""}${quoteExact(t.schema, t.name)}`;
  return `SELECT count(*)::int8 AS n, coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::int8::numeric), 0)::text AS s FROM ${from} AS t`;
}

export async function tableSum(c: pg.ClientBase, t: Summable): Promise<Sum> {
  if (t.kind === "m" && t.unpopulated) return { rows: 0, checksum: UNPOPULATED };
  const r = await c.query<{ n: string; s: string }>(checksumSql(t));
  return { rows: Number(r.rows[0].n), checksum: `md5sum64:${r.rows[0].s}` };
}

export interface SequenceState {
  /** "last_value/is_called" */
  state: string;
  /** The table owning it (serial/identity), whose oid is only meaningful on the side that read it. */
  owner?: number;
}

/** Every sequence's state in the given schemas, keyed "schema.name". */
export async function sequenceStates(c: pg.ClientBase, schemas: string[], signal?: AbortSignal): Promise<Map<string, SequenceState>> {
  const seqs = await c.query<{ schema: string; name: string; owner: string | null }>(
    `SELECT n.nspname AS schema, c.relname AS name, min(d.refobjid::int8) AS owner
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      WHERE c.relkind = 'S' AND n.nspname = ANY($1) GROUP BY 1, 2 ORDER BY 1, 2`,
    [schemas],
  );
  const out = new Map<string, SequenceState>();
  for (let i = 0; i < seqs.rows.length; i += 200) {
    throwIfAborted(signal);
    const chunk = seqs.rows.slice(i, i + 200);
    const sql = chunk.map((s, j) => `SELECT ${j} AS i, last_value::text AS v, is_called FROM ${quoteExact(s.schema, s.name)}`).join(" UNION ALL ");
    const r = await c.query<{ i: number; v: string; is_called: boolean }>(sql);
    for (const row of r.rows) {
      const s = chunk[row.i];
      out.set(`${s.schema}.${s.name}`, { state: `${row.v}/${row.is_called}`, owner: s.owner === null ? undefined : Number(s.owner) });
    }
  }
  return out;
}

/** Count and checksum of every large object (oid and content). */
export async function largeObjectsSum(c: pg.ClientBase): Promise<Sum> {
  const r = await c.query<{ n: string; s: string }>(
    `SELECT count(*)::int8 AS n,
            coalesce(sum(('x' || substr(md5(oid::text || ':' || md5(lo_get(oid))), 1, 16))::bit(64)::int8::numeric), 0)::text AS s
       FROM pg_catalog.pg_largeobject_metadata`,
  );
  return { rows: Number(r.rows[0].n), checksum: `md5sum64:${r.rows[0].s}` };
}
