import type pg from "pg";
import type { SnapshotManifest } from "../../common/snapshot";
import { PerSnapshot } from "./per-snapshot";

/**
 * What the API may read: tables, partitioned tables and materialized views the connected role can
 * SELECT, with their columns and primary keys. Read once per snapshot (it never changes within one);
 * every identifier in a request is checked against it and only catalog names ever reach SQL.
 */

export interface Column {
  name: string;
  /** format_type(): usable as a cast target, e.g. `character varying(20)`. */
  type: string;
  notNull: boolean;
  /** pg_type.typcategory of the (domain's base) type: S string, N numeric, B boolean, A array, ... */
  category: string;
  /** Has a default btree opclass: =, <, > and ORDER BY work. */
  sortable: boolean;
}

/** One part of the key that makes an order total: a primary key column, or ctid (and tableoid) without one. */
export interface KeyPart {
  name: string;
  sql: string;
  cast: string;
  notNull: true;
}

export interface Table {
  schema: string;
  name: string;
  kind: "table" | "partitioned" | "matview";
  /** Quoted `"schema"."name"` for SQL. */
  sql: string;
  columns: Column[];
  byName: Map<string, Column>;
  primaryKey: string[];
  /** primary key parts, else (tableoid, ctid): a snapshot never changes, so ctid is a stable row address. */
  key: KeyPart[];
  /** From the snapshot manifest (exact at bake time); null when the manifest does not list the table. */
  rows: number | null;
}

export const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

const TABLES_SQL = `
SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
  coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS pk
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY n.nspname, c.relname`;

const COLUMNS_SQL = `
SELECT a.attrelid::int8::text AS rel, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
  a.attnotnull AS notnull, bt.typcategory::text AS category,
  EXISTS (SELECT 1 FROM pg_opclass oc
           WHERE oc.opcmethod = 403 AND oc.opcdefault
             AND (oc.opcintype = bt.oid
               OR oc.opcintype = (CASE WHEN bt.typcategory = 'A' THEN to_regtype('anyarray')
                                       WHEN bt.typtype = 'e' THEN to_regtype('anyenum')
                                       WHEN bt.typtype = 'r' THEN to_regtype('anyrange')
                                       WHEN bt.typtype = 'm' THEN to_regtype('anymultirange')
                                       WHEN bt.typtype = 'c' THEN to_regtype('record') END)::oid
               OR EXISTS (SELECT 1 FROM pg_cast ca WHERE ca.castsource = bt.oid AND ca.casttarget = oc.opcintype AND ca.castmethod = 'b'))) AS sortable
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
 WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
   AND has_column_privilege(a.attrelid, a.attnum, 'SELECT')
 ORDER BY a.attrelid, a.attnum`;

const KINDS: Record<string, Table["kind"]> = { r: "table", p: "partitioned", m: "matview" };

export class Catalog {
  readonly tables: Table[];
  private readonly byRef = new Map<string, Table>();

  constructor(tables: Table[]) {
    this.tables = tables;
    const unqualified = new Map<string, Table[]>();
    for (const t of tables) {
      this.byRef.set(`${t.schema}.${t.name}`, t);
      unqualified.set(t.name, [...(unqualified.get(t.name) ?? []), t]);
    }
    // A bare name means the table in public, else the only table of that name.
    for (const [name, ts] of unqualified) {
      const t = ts.find((x) => x.schema === "public") ?? (ts.length === 1 ? ts[0] : undefined);
      if (t && !this.byRef.has(name)) this.byRef.set(name, t);
    }
  }

  /** `schema.table` or a bare `table` (public first, else unique). */
  find(ref: string): Table | undefined {
    return this.byRef.get(ref);
  }

  /** Names sharing `ref`'s bare name, for "did you mean" in errors. */
  candidates(ref: string): string[] {
    const bare = ref.includes(".") ? ref.slice(ref.lastIndexOf(".") + 1) : ref;
    return this.tables.filter((t) => t.name === bare).map((t) => `${t.schema}.${t.name}`);
  }

  static async load(client: pg.ClientBase, snapshot: SnapshotManifest): Promise<Catalog> {
    const rels = await client.query<{ oid: string; schema: string; name: string; kind: string; pk: string[] }>(TABLES_SQL);
    const cols = await client.query<{ rel: string; name: string; type: string; notnull: boolean; category: string; sortable: boolean }>(COLUMNS_SQL, [
      rels.rows.map((r) => r.oid),
    ]);
    const colsByRel = new Map<string, Column[]>();
    for (const c of cols.rows) {
      const list = colsByRel.get(c.rel) ?? [];
      list.push({ name: c.name, type: c.type, notNull: c.notnull, category: c.category, sortable: c.sortable });
      colsByRel.set(c.rel, list);
    }
    const rowsOf = new Map(snapshot.tables.map((t) => [`${t.schema}.${t.name}`, t.rows]));
    const tables = rels.rows.map((r): Table => {
      const columns = colsByRel.get(r.oid) ?? [];
      const byName = new Map(columns.map((c) => [c.name, c]));
      const kind = KINDS[r.kind];
      const pkCols = r.pk.filter((n) => byName.has(n));
      const key: KeyPart[] =
        pkCols.length && pkCols.length === r.pk.length
          ? pkCols.map((n) => ({ name: n, sql: quoteIdent(n), cast: byName.get(n)!.type, notNull: true }))
          : // tableoid too: a partitioned or inheritance parent returns rows of several relations.
            [
              { name: "tableoid", sql: "tableoid", cast: "oid", notNull: true },
              { name: "ctid", sql: "ctid", cast: "tid", notNull: true },
            ];
      return {
        schema: r.schema,
        name: r.name,
        kind,
        sql: `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`,
        columns,
        byName,
        primaryKey: r.pk,
        key,
        rows: rowsOf.get(`${r.schema}.${r.name}`) ?? null,
      };
    });
    return new Catalog(tables);
  }
}

/** One catalog per snapshot id, loaded on first use through the replica serving that snapshot. */
export class CatalogCache extends PerSnapshot<Catalog> {
  constructor() {
    super((client, snapshot) => Catalog.load(client, snapshot));
  }
}
