import type pg from "pg";
import { BakeError } from "./errors";
import { matches, schemaPattern, tablePattern, type NamePattern } from "./patterns";

/** One relation of the master, as read inside the snapshot. */
export interface Rel {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, m matview, v view, f foreign table. */
  kind: "r" | "p" | "m" | "v" | "f";
  unlogged: boolean;
  /** The partition tree's root, for a partition. */
  root?: number;
  /** Heap + TOAST bytes on the master (progress only). */
  bytes: number;
  /** A matview created WITH NO DATA. */
  unpopulated: boolean;
}

export interface Catalog {
  schemas: string[];
  rels: Rel[];
  /** child -> parents, plain inheritance (not partitions). */
  inherits: Array<{ child: number; parent: number }>;
  /** table -> table it references (top-level foreign keys). */
  fks: Array<{ rel: number; ref: number; name: string }>;
  /** view/matview -> relation its query reads. */
  viewDeps: Array<{ rel: number; ref: number }>;
}

export interface SelectOptions {
  schemas?: string[];
  includeTables?: string[];
  excludeTables?: string[];
}

export interface Selection {
  /** Schemas baked (pg_dump keeps everything in them but the excluded relations). */
  schemas: string[];
  /** User schemas left out (pg_dump -N). */
  excludedSchemas: string[];
  /** Relations baked. */
  kept: Rel[];
  /** Relations of baked schemas left out (pg_dump -T). */
  excluded: Rel[];
  /** Views/matviews dropped because they read an excluded relation. */
  notes: string[];
}

const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'`;
const NOT_EXTENSION_MEMBER = (cls: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = '${cls}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

/** Reads what the selection needs, inside the snapshot transaction. */
export async function loadCatalog(c: pg.ClientBase): Promise<Catalog> {
  const schemas = await c.query<{ nspname: string }>(
    `SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER("pg_namespace", "n.oid")} ORDER BY 1`,
  );
  const rels = await c.query(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
            c.relpersistence = 'u' AS unlogged,
            CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid)::int8 END AS root,
            CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END AS bytes,
            (c.relkind = 'm' AND NOT c.relispopulated) AS unpopulated
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER("pg_class", "c.oid")}
      ORDER BY n.nspname, c.relname`,
  );
  const inherits = await c.query(
    `SELECT i.inhrelid::int8 AS child, i.inhparent::int8 AS parent
       FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE NOT c.relispartition`,
  );
  const fks = await c.query(
    `SELECT conrelid::int8 AS rel, confrelid::int8 AS ref, conname AS name FROM pg_catalog.pg_constraint WHERE contype = 'f' AND conparentid = 0`,
  );
  const viewDeps = await c.query(
    `SELECT DISTINCT r.ev_class::int8 AS rel, d.refobjid::int8 AS ref
       FROM pg_catalog.pg_rewrite r
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class`,
  );
  const num = (v: unknown) => Number(v);
  return {
    schemas: schemas.rows.map((r) => r.nspname),
    rels: rels.rows.map((r) => ({
      oid: num(r.oid),
      schema: r.schema,
      name: r.name,
      kind: r.kind,
      unlogged: r.unlogged,
      root: r.root === null ? undefined : num(r.root),
      bytes: num(r.bytes),
      unpopulated: r.unpopulated,
    })),
    inherits: inherits.rows.map((r) => ({ child: num(r.child), parent: num(r.parent) })),
    fks: fks.rows.map((r) => ({ rel: num(r.rel), ref: num(r.ref), name: r.name })),
    viewDeps: viewDeps.rows.map((r) => ({ rel: num(r.rel), ref: num(r.ref) })),
  };
}

const KIND_NAME: Record<Rel["kind"], string> = { r: "table", p: "partitioned table", m: "materialized view", v: "view", f: "foreign table" };
export const qualified = (r: Pick<Rel, "schema" | "name">) => `${r.schema}.${r.name}`;

/**
 * Decides what a bake keeps. Partitions follow their tree's root (a pattern naming a partition alone is
 * an error: the partitioned table's content would differ from the master's); views and matviews that read an
 * excluded relation are dropped (an error when asked for by name); a kept table whose foreign key,
 * inheritance parent or partition would be missing is an error: such a subset cannot be restored.
 */
export function selectRelations(cat: Catalog, opts: SelectOptions): Selection {
  const schemaPats = (opts.schemas ?? []).map((s) => schemaPattern("--schema", s));
  const include = (opts.includeTables ?? []).map((s) => tablePattern("--include-table", s));
  const exclude = (opts.excludeTables ?? []).map((s) => tablePattern("--exclude-table", s));

  let schemas = cat.schemas;
  if (schemaPats.length) {
    const chosen = new Set<string>();
    for (const p of schemaPats) {
      const hit = cat.schemas.filter((s) => p.name.test(s));
      if (!hit.length) throw new BakeError("option", `--schema ${JSON.stringify(p.text)} matches no schema of the master (it has: ${cat.schemas.join(", ") || "none"})`);
      hit.forEach((s) => chosen.add(s));
    }
    schemas = cat.schemas.filter((s) => chosen.has(s));
  }
  const baked = new Set(schemas);
  const byOid = new Map(cat.rels.map((r) => [r.oid, r]));
  const inSchema = cat.rels.filter((r) => baked.has(r.schema));
  const unit = (r: Rel) => r.root ?? r.oid;
  const hits = (p: NamePattern) => inSchema.filter((r) => matches(p, r.schema, r.name));

  // partitions follow their partitioned table: a pattern may name a partition only with its root
  const unitHits = (option: string, pats: NamePattern[]): Map<NamePattern, Rel[]> => {
    const all = new Map(pats.map((p) => [p, hits(p)]));
    const hitOids = new Set([...all.values()].flat().map((r) => r.oid));
    for (const [p, rels] of all) {
      const orphan = rels.find((r) => r.root !== undefined && !hitOids.has(r.root));
      if (orphan) {
        throw new BakeError("option", `${option} ${JSON.stringify(p.text)} matches partition ${qualified(orphan)} but not its partitioned table ${qualified(byOid.get(orphan.root!)!)}: partitions follow their partitioned table, name that instead`);
      }
    }
    return all;
  };
  const selected = new Set<number>();
  const named = new Set<number>();
  if (include.length) {
    for (const [p, h] of unitHits("--include-table", include)) {
      if (!h.length) throw new BakeError("option", `--include-table ${JSON.stringify(p.text)} matches no table, view or materialized view in the baked schemas (${schemas.join(", ") || "none"})`);
      for (const r of h) {
        selected.add(unit(r));
        named.add(unit(r));
      }
    }
  } else inSchema.forEach((r) => selected.add(unit(r)));
  for (const h of unitHits("--exclude-table", exclude).values()) for (const r of h) selected.delete(unit(r));

  const keep = new Set(inSchema.filter((r) => selected.has(unit(r))).map((r) => r.oid));
  const notes: string[] = [];
  // views/matviews reading something not kept go too, until nothing changes (views on views)
  const userOids = new Set(byOid.keys());
  for (let changed = true; changed; ) {
    changed = false;
    for (const d of cat.viewDeps) {
      if (!keep.has(d.rel) || !userOids.has(d.ref) || keep.has(d.ref)) continue;
      const v = byOid.get(d.rel)!;
      const missing = byOid.get(d.ref)!;
      if (named.has(v.oid)) {
        throw new BakeError("subset", `${KIND_NAME[v.kind]} ${qualified(v)} was asked for but reads ${qualified(missing)}, which is not baked: include it too`);
      }
      keep.delete(d.rel);
      notes.push(`${KIND_NAME[v.kind]} ${qualified(v)} left out: it reads ${qualified(missing)}, which is not baked`);
      changed = true;
    }
  }
  for (const fk of cat.fks) {
    if (keep.has(fk.rel) && userOids.has(fk.ref) && !keep.has(fk.ref)) {
      throw new BakeError("subset", `table ${qualified(byOid.get(fk.rel)!)} has foreign key ${fk.name} to ${qualified(byOid.get(fk.ref)!)}, which is not baked: include both or neither`);
    }
  }
  for (const i of cat.inherits) {
    if (keep.has(i.child) && userOids.has(i.parent) && !keep.has(i.parent)) {
      throw new BakeError("subset", `table ${qualified(byOid.get(i.child)!)} inherits from ${qualified(byOid.get(i.parent)!)}, which is not baked: include both`);
    }
  }
  for (const r of cat.rels) {
    if (r.root !== undefined && !baked.has(r.schema) && keep.has(r.root)) {
      throw new BakeError("subset", `partition ${qualified(r)} of ${qualified(byOid.get(r.root)!)} is in schema ${r.schema}, which is not baked: add --schema ${r.schema}`);
    }
  }
  return {
    schemas,
    excludedSchemas: cat.schemas.filter((s) => !baked.has(s)),
    kept: inSchema.filter((r) => keep.has(r.oid)),
    excluded: inSchema.filter((r) => !keep.has(r.oid)),
    notes,
  };
}
