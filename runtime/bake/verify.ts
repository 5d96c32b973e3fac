import { existsSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { PgBinaries } from "../pg/binaries";
import { freePort } from "../pg/ports";
import { startServer, type PgServer, type Settings } from "../pg/server";
import { CHECKSUM_ALGORITHM, CHECKSUM_SESSION, checksumAlgorithm, largeObjectsSum, sequenceStates, sumTables, UNPOPULATED, type Sum, type Summable } from "./checksum";
import { BakeError, throwIfAborted } from "./errors";
import { quoteExact } from "./patterns";

export interface StartBakedOptions {
  /** @default a free port */
  port?: number;
  /** TCP listen address; "" = local socket only. @default "" */
  host?: string;
  socketDir?: string;
  /** @default `<pgdata>.log` beside the PGDATA */
  logFile?: string;
  settings?: Settings;
}

/**
 * Starts a baked PGDATA (`<snapshot>/pgdata` or the PGDATA itself) as what it is: a hot standby with no
 * upstream, which refuses every write. Refuses a PGDATA without standby.signal: that would start
 * writable. For the bake's own verification and for tests that need to read a snapshot.
 */
export async function startBakedSnapshot(bin: PgBinaries, dir: string, opts: StartBakedOptions = {}): Promise<PgServer> {
  const pgdata = existsSync(path.join(dir, "PG_VERSION")) ? dir : path.join(dir, "pgdata");
  if (!existsSync(path.join(pgdata, "standby.signal"))) {
    throw new Error(`${pgdata} has no standby.signal: not a baked snapshot (it would start writable)`);
  }
  return startServer(bin, {
    dataDir: pgdata,
    port: opts.port ?? (await freePort()),
    host: opts.host ?? "",
    socketDir: opts.socketDir,
    logFile: opts.logFile,
    settings: { hot_standby: true, ...opts.settings },
  });
}

/** What the master held at the snapshot, to compare the baked replica against. */
export interface Expected {
  tables: Array<Summable & Sum>;
  /**
   * "schema.name" -> "last_value/is_called" read before the dump started and after it ended, for the
   * sequences the bake keeps. Sequences are not transactional: pg_dump reads them at some moment in
   * between, so an unused sequence must match exactly and a busy one lie within that range.
   */
  sequences: Map<string, { before: string; after: string }>;
  largeObjects: Sum;
}

export interface Verified {
  /** Per table, pg_total_relation_size on the replica, keyed "schema.name". */
  bytes: Map<string, number>;
}

/**
 * Recomputes every count and checksum on the baked replica, `jobs` sessions at a time, each with the
 * algorithm its expected checksum names (an unknown one is refused before any work); any difference fails
 * the bake.
 */
export async function verifyReplica(
  server: PgServer,
  database: string,
  expected: Expected,
  schemas: string[],
  signal?: AbortSignal,
  onTable?: (done: number) => void,
  jobs = 1,
): Promise<Verified> {
  const algorithms = expected.tables.map((t) => {
    if (t.checksum === UNPOPULATED) return CHECKSUM_ALGORITHM;
    try {
      return checksumAlgorithm(t.checksum, `${t.schema}.${t.name}: checksum`);
    } catch (e) {
      throw new BakeError("verify", `cannot verify against this manifest: ${(e as Error).message}`);
    }
  });
  const sessions: pg.Client[] = [];
  try {
    for (let i = 0; i < Math.max(1, Math.min(jobs, expected.tables.length)); i++) {
      const c = new pg.Client(server.socketConfig(database));
      sessions.push(c);
      await c.connect();
      await c.query(CHECKSUM_SESSION);
    }
    const [c, ...helpers] = sessions;
    const rec = await c.query<{ r: boolean }>("SELECT pg_catalog.pg_is_in_recovery() AS r");
    if (!rec.rows[0].r) throw new BakeError("verify", "the baked PGDATA did not start as a standby (it would accept writes)");
    const sums = await sumTables(c, expected.tables, { helpers, algorithm: (i) => algorithms[i], signal, onTable: (_t, _s, done) => onTable?.(done) });
    throwIfAborted(signal);
    const diffs: string[] = [];
    expected.tables.forEach((t, i) => {
      const key = `${t.schema}.${t.name}`;
      const got = sums[i];
      if (got instanceof Error) return diffs.push(`${key}: cannot be read on the replica (${got.message})`);
      // the restore refreshes matviews from the snapshot's data: a stale one on the master differs
      const hint = t.kind === "m" ? " (a materialized view stale on the master, or whose query is not deterministic: REFRESH it on the master)" : "";
      if (got.rows !== t.rows) diffs.push(`${key}: ${got.rows} rows on the replica, ${t.rows} on the master${hint}`);
      else if (got.checksum !== t.checksum) diffs.push(`${key}: same row count but different content${hint}`);
    });
    const bytes = new Map<string, number>();
    const readable = expected.tables.filter((_, i) => !(sums[i] instanceof Error));
    const size = await c.query<{ b: string }>(
      "SELECT pg_catalog.pg_total_relation_size(pg_catalog.to_regclass(x))::int8 AS b FROM unnest($1::text[]) WITH ORDINALITY u(x, i) ORDER BY i",
      [readable.map((t) => quoteExact(t.schema, t.name))],
    );
    readable.forEach((t, i) => bytes.set(`${t.schema}.${t.name}`, Number(size.rows[i].b ?? 0)));
    const seqs = await sequenceStates(c, schemas, signal);
    for (const [name, want] of expected.sequences) {
      const got = seqs.get(name)?.state;
      if (got === undefined) diffs.push(`sequence ${name}: missing on the replica`);
      else if (!sequenceWithin(got, want.before, want.after)) {
        diffs.push(`sequence ${name}: ${got} on the replica, ${want.before === want.after ? want.before : `between ${want.before} and ${want.after}`} on the master`);
      }
    }
    const lo = await largeObjectsSum(c);
    if (lo.rows !== expected.largeObjects.rows || lo.checksum !== expected.largeObjects.checksum) {
      diffs.push(`large objects: ${lo.rows} on the replica, ${expected.largeObjects.rows} on the master${lo.rows === expected.largeObjects.rows ? " (content differs)" : ""}`);
    }
    if (diffs.length) {
      const more = diffs.length > 10 ? `\n  ... and ${diffs.length - 10} more` : "";
      throw new BakeError("verify", `the baked replica differs from the master's snapshot:\n  ${diffs.slice(0, 10).join("\n  ")}${more}`);
    }
    return { bytes };
  } finally {
    await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
  }
}

/** "last_value/is_called" as a position: the last value handed out (before its first call, one less). */
function position(state: string): bigint {
  const [v, called] = state.split("/");
  return BigInt(v) - (called === "true" ? 0n : 1n);
}

export function sequenceWithin(got: string, before: string, after: string): boolean {
  if (before === after) return got === before;
  const [g, b, a] = [position(got), position(before), position(after)];
  return (b <= g && g <= a) || (a <= g && g <= b);
}

