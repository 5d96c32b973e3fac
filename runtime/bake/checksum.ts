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
  /** Size on the master, to start the largest tables first when summing several at a time. */
  bytes?: number;
}

export interface Sum {
  rows: number;
  checksum: string;
}

/** An unpopulated matview cannot be read; both sides report it so. */
export const UNPOPULATED = "unpopulated";

/**
 * Per-row 64-bit hashes of the row's text form, summed (as numeric: never overflows) so row order does
 * not matter. The manifest's checksum is "<algorithm>:<sum>"; new bakes write the first one, verification
 * recomputes with whichever the expected checksum names.
 * - hte64: hashtextextended (PostgreSQL's hash_any_extended, Jenkins lookup3, 64 bits) over the bytes of
 *   the row text: COLLATE "C" makes it hash the bytes whatever the database's collation (a non-
 *   deterministic collation would hash an ICU sort key instead). Byte order matters to it, so a little-
 *   endian master (x86_64, arm64: RDS, Graviton) and bake agree; the same function backs hash
 *   partitioning and hash indexes, which pg_upgrade carries across versions, so it is stable. Sums as
 *   int8 (128-bit accumulator) at about the cost of the row-to-text conversion alone.
 * - md5sum64: the first 64 bits of md5(row text); the earlier format, about 3x slower.
 */
const ROW_HASH = {
  hte64: (row: string) => `pg_catalog.hashtextextended(${row}::text COLLATE pg_catalog."C", 0)`,
  md5sum64: (row: string) => `('x' || pg_catalog.substr(pg_catalog.md5(${row}::text), 1, 16))::bit(64)::int8`,
} as const;

export type ChecksumAlgorithm = keyof typeof ROW_HASH;
export const CHECKSUM_ALGORITHM: ChecksumAlgorithm = "hte64";
export const CHECKSUM_ALGORITHMS = Object.keys(ROW_HASH) as ChecksumAlgorithm[];

/** The algorithm a checksum was made with; an unknown one is an error naming the known ones. */
export function checksumAlgorithm(checksum: string, what = "checksum"): ChecksumAlgorithm {
  const name = /^([A-Za-z0-9_-]+):/.exec(checksum)?.[1];
  if (name && Object.hasOwn(ROW_HASH, name)) return name as ChecksumAlgorithm;
  throw new Error(
    `${what} ${JSON.stringify(checksum.length > 40 ? `${checksum.slice(0, 40)}...` : checksum)}: ${name ? `unknown checksum algorithm "${name}"` : "no algorithm prefix"}; known: ${CHECKSUM_ALGORITHMS.join(", ")} (a snapshot from a newer bake? verify it with that version)`,
  );
}

/** Count and an order-independent content checksum in one pass, no sort. */
export function checksumSql(t: Summable, algorithm: ChecksumAlgorithm = CHECKSUM_ALGORITHM): string {
  const from = `${t.kind === "r" ? "ONLY " : ""}${quoteExact(t.schema, t.name)}`;
  return `SELECT count(*)::int8 AS n, coalesce(sum(${ROW_HASH[algorithm]("t")}), 0)::text AS s FROM ${from} AS t`;
}

export async function tableSum(c: pg.ClientBase, t: Summable, algorithm: ChecksumAlgorithm = CHECKSUM_ALGORITHM): Promise<Sum> {
  if (t.kind === "m" && t.unpopulated) return { rows: 0, checksum: UNPOPULATED };
  const r = await c.query<{ n: string; s: string }>(checksumSql(t, algorithm));
  return { rows: Number(r.rows[0].n), checksum: `${algorithm}:${r.rows[0].s}` };
}

export interface SumPoolOptions<T> {
  /** Sessions besides the first, which each take the next table as they finish one; may be empty. */
  helpers: pg.ClientBase[];
  /** Algorithm per table, by its index in `tables` (verification uses the expected checksum's). @default CHECKSUM_ALGORITHM */
  algorithm?: (i: number) => ChecksumAlgorithm;
  /**
   * Called when a helper fails on a table with a lock timeout: the table is handed to the first session
   * (which holds the locks) and the helper must get ready for the next one (a new transaction).
   */
  recover?: (helper: pg.ClientBase) => Promise<void>;
  signal?: AbortSignal;
  onTable?: (t: T, s: Sum | Error, done: number) => void;
}

/**
 * Sums `tables` over `first` and the helpers at once, largest first; results in the tables' order. A
 * table that fails is reported as its Error (to onTable and in the result) and the others go on.
 */
export async function sumTables<T extends Summable>(first: pg.ClientBase, tables: T[], o: SumPoolOptions<T>): Promise<Array<Sum | Error>> {
  const out = new Array<Sum | Error>(tables.length);
  const queue = tables.map((_, i) => i).sort((a, b) => (tables[b].bytes ?? 0) - (tables[a].bytes ?? 0));
  const handBack: number[] = [];
  let done = 0;
  const finish = (i: number, s: Sum | Error) => {
    out[i] = s;
    o.onTable?.(tables[i], s, ++done);
  };
  const one = async (c: pg.ClientBase, i: number) => tableSum(c, tables[i], o.algorithm?.(i) ?? CHECKSUM_ALGORITHM);
  const work = async (c: pg.ClientBase, helper: boolean) => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      throwIfAborted(o.signal);
      try {
        finish(i, await one(c, i));
      } catch (e) {
        if (helper && (e as { code?: string }).code === "55P03" && o.recover) {
          handBack.push(i);
          await o.recover(c);
        } else finish(i, e as Error);
      }
    }
  };
  await Promise.all([work(first, false), ...o.helpers.map((h) => work(h, true))]);
  for (const i of handBack) {
    throwIfAborted(o.signal);
    finish(i, await one(first, i).catch((e: Error) => e));
  }
  return out;
}

/**
 * How many more sessions the master can spare for the checksums: free slots under max_connections (less
 * the superuser-reserved ones, RDS's included) and under our role's connection limit, less what pg_dump
 * -j N takes (N + 1) and a margin for the application, at most `want`.
 */
export async function spareSessions(c: pg.ClientBase, want: number, dumpJobs: number): Promise<number> {
  const r = await c.query<{ free_total: number; free_role: number | null; max: number }>(
    `SELECT s.max - s.reserved - (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE coalesce(backend_type, 'client backend') = 'client backend')::int AS free_total,
            CASE WHEN r.rolconnlimit >= 0 THEN r.rolconnlimit - (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = current_user)::int END AS free_role,
            s.max
       FROM (SELECT current_setting('max_connections')::int AS max,
                    current_setting('superuser_reserved_connections')::int
                    + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0)
                    + coalesce(nullif(current_setting('rds.rds_superuser_reserved_connections', true), '')::int, 0) AS reserved) s,
            pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  );
  const { free_total, free_role, max } = r.rows[0];
  const margin = Math.max(2, Math.ceil(max / 10));
  const free = Math.min(free_total - margin, free_role ?? Infinity) - (dumpJobs + 1);
  return Math.max(0, Math.min(want, free));
}

/** Makes `c` read the exported snapshot (in a new read-only transaction), with the checksum settings. */
export async function joinSnapshot(c: pg.ClientBase, snapshot: string): Promise<void> {
  await c.query("ROLLBACK"); // a no-op (with a warning) unless a failed transaction is open
  await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
}

/**
 * Counts and checksums of `tables` on the master inside the exported snapshot: on `master` (the session
 * that exported it and holds the tables' locks) and up to `jobs - 1` more sessions that import it, as the
 * master's free connections allow. A helper waits at most 1 s for a lock (an ACCESS EXCLUSIVE queued
 * behind our ACCESS SHARE would otherwise block it until the bake ends) and hands the table back.
 */
export async function snapshotSums<T extends Summable>(
  master: pg.ClientBase,
  connect: () => Promise<pg.Client>,
  snapshot: string,
  tables: T[],
  jobs: number,
  signal?: AbortSignal,
): Promise<Array<T & Sum>> {
  const helpers: pg.Client[] = [];
  const cancelHelpers = () => {
    const pids = helpers.map((h) => (h as unknown as { processID?: number }).processID).filter((p) => p);
    if (!pids.length) return;
    void connect()
      .then(async (k) => {
        await k.query("SELECT pg_catalog.pg_cancel_backend(p) FROM unnest($1::int[]) p", [pids]).catch(() => undefined);
        await k.end();
      })
      .catch(() => undefined); // best effort: closing the sessions ends them too
  };
  signal?.addEventListener("abort", cancelHelpers, { once: true });
  try {
    const spare = jobs > 1 && tables.length > 1 ? await spareSessions(master, Math.min(jobs, tables.length) - 1, jobs) : 0;
    for (let i = 0; i < spare; i++) {
      let h: pg.Client | undefined;
      try {
        h = await connect();
        await h.query(`${CHECKSUM_SESSION}; SET lock_timeout = '1s'`);
        await joinSnapshot(h, snapshot);
        helpers.push(h);
      } catch {
        await h?.end().catch(() => undefined);
        break; // the master refused one more session: go on with those we have
      }
    }
    const sums = await sumTables(master, tables, { helpers, recover: (h) => joinSnapshot(h, snapshot), signal });
    return tables.map((t, i) => {
      const s = sums[i];
      if (s instanceof Error) throw new Error(`checksum of ${t.schema}.${t.name} on the master: ${s.message}`);
      return { ...t, ...s };
    });
  } finally {
    signal?.removeEventListener("abort", cancelHelpers);
    await Promise.all(helpers.map((h) => h.end().catch(() => undefined)));
  }
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

/** Count and checksum of every large object (oid and the md5 of its content); compared within one bake only. */
export async function largeObjectsSum(c: pg.ClientBase): Promise<Sum> {
  const r = await c.query<{ n: string; s: string }>(
    `SELECT count(*)::int8 AS n,
            coalesce(sum(${ROW_HASH[CHECKSUM_ALGORITHM]("(oid::text || ':' || pg_catalog.md5(pg_catalog.lo_get(oid)))")}), 0)::text AS s
       FROM pg_catalog.pg_largeobject_metadata`,
  );
  return { rows: Number(r.rows[0].n), checksum: `${CHECKSUM_ALGORITHM}:${r.rows[0].s}` };
}
