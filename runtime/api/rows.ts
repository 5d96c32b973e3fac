import { quoteIdent, type Column, type Table } from "./catalog";
import { decodeCursor, encodeCursor } from "./cursor";
import { badRequest, show } from "./errors";

/**
 * Turns `/v1/tables/:table/rows` query strings into one parameterized SELECT. Only catalog names are
 * written into the SQL text; every value is a parameter cast to its column's type.
 *
 *   ?<col>=[not.]<op>.<value>   ops: eq neq lt lte gt gte like ilike in is   (repeat a column to AND)
 *   ?select=a,b   ?order=a.desc,b.asc   ?limit=50   ?cursor=<from the previous page>
 *   like/ilike: `*` is a wildcard too (same as %).  in.(a,b,"c,d")  is.null|notnull|true|false|unknown
 */

export const RESERVED = new Set(["select", "order", "limit", "cursor"]);
export const OPS = ["eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in", "is"] as const;
type Op = (typeof OPS)[number];
const COMPARE: Partial<Record<Op, string>> = { eq: "=", neq: "<>", lt: "<", lte: "<=", gt: ">", gte: ">=" };
const IS_VALUES: Record<string, string> = { null: "IS NULL", notnull: "IS NOT NULL", true: "IS TRUE", false: "IS FALSE", unknown: "IS UNKNOWN" };
const MAX_FILTERS = 64;
const MAX_LIST = 1000;

/** A bound value and what to blame when PostgreSQL rejects it. */
export interface Param {
  value: unknown;
  /** The type it is cast to in the SQL (for re-checking it alone). */
  cast: string;
  field: string;
  code: "invalid_value" | "invalid_cursor" | "invalid_key";
}

export interface BuiltQuery {
  sql: string;
  params: Param[];
  /** Output column names (the first N values of each array row). */
  columns: string[];
}

export interface RowsQuery extends BuiltQuery {
  limit: number;
  /** After the output columns: the order/key values as text, for the next cursor. */
  keyCount: number;
  signature: string;
}

type Query = Record<string, string | string[] | undefined>;

function single(q: Query, name: string): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) throw badRequest("repeated_param", `give ${name} once`, name);
  return v;
}

/**
 * Splits `a,b,"c,d","e\"f"` into values: double quotes protect commas, backslash escapes inside quotes.
 * Used by `in.(...)` and composite primary keys.
 */
export function parseList(s: string, field: string): string[] {
  const out: string[] = [];
  let i = 0;
  if (s === "") return out;
  for (;;) {
    let v = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw badRequest("invalid_list", `unterminated quoted value in ${field}`, field);
        const ch = s[i++];
        if (ch === "\\" && i < s.length) v += s[i++];
        else if (ch === '"') break;
        else v += ch;
      }
      if (i < s.length && s[i] !== ",") throw badRequest("invalid_list", `expected a comma after a quoted value in ${field}`, field);
    } else {
      const end = s.indexOf(",", i);
      v = s.slice(i, end < 0 ? s.length : end);
      i = end < 0 ? s.length : end;
    }
    out.push(v);
    if (out.length > MAX_LIST) throw badRequest("list_too_long", `${field} holds more than ${MAX_LIST} values`, field);
    if (i >= s.length) return out;
    i++; // the comma
    if (i >= s.length) {
      out.push("");
      return out;
    }
  }
}

function columnOf(t: Table, name: string, field: string): Column {
  const c = t.byName.get(name);
  if (!c) {
    throw badRequest(
      "unknown_column",
      `${t.schema}.${t.name} has no column ${show(name)}; columns: ${t.columns.map((x) => x.name).join(", ")}`.slice(0, 1000),
      field,
    );
  }
  return c;
}

export function parseSelect(t: Table, raw: string | undefined): Column[] {
  if (raw === undefined || raw.trim() === "*") return t.columns;
  const names = raw.split(",").map((s) => s.trim());
  if (names.some((n) => n === "")) throw badRequest("invalid_select", "select must be a comma-separated list of column names, e.g. select=id,name", "select");
  return [...new Set(names)].map((n) => columnOf(t, n, "select"));
}

export function parseLimit(raw: string | undefined, def: number, max: number): number {
  if (raw === undefined) return def;
  if (!/^\d{1,15}$/.test(raw)) throw badRequest("invalid_limit", `limit must be a whole number from 1 to ${max}, not ${show(raw)}`, "limit");
  const n = Number(raw);
  if (n > max) throw badRequest("limit_too_large", `limit ${n} is above the maximum of ${max}; page through with the cursor instead`, "limit");
  if (n < 1) throw badRequest("invalid_limit", `limit must be a whole number from 1 to ${max}`, "limit");
  return n;
}

interface OrderTerm {
  name: string;
  sql: string;
  cast: string;
  desc: boolean;
  notNull: boolean;
}

export function parseOrder(t: Table, raw: string | undefined): OrderTerm[] {
  if (raw === undefined) return [];
  const terms = raw.split(",");
  if (terms.length > 16) throw badRequest("invalid_order", "order takes at most 16 columns", "order");
  const seen = new Set<string>();
  return terms.map((term) => {
    const m = /^(.*?)(?:\.(asc|desc))?$/.exec(term.trim())!;
    const usage = "order must look like order=<column>.asc|desc[,<column>.asc|desc]";
    if (!m[1]) throw badRequest("invalid_order", usage, "order");
    const dot = m[1].lastIndexOf(".");
    if (!m[2] && !t.byName.has(m[1]) && dot > 0 && t.byName.has(m[1].slice(0, dot))) {
      throw badRequest("invalid_order", `unknown direction ${show(m[1].slice(dot + 1))} for ${m[1].slice(0, dot)}: ${usage}`, "order");
    }
    const c = columnOf(t, m[1], "order");
    if (!c.sortable) throw badRequest("unsortable_column", `column ${c.name} (${c.type}) cannot be ordered`, "order");
    if (seen.has(c.name)) throw badRequest("invalid_order", `column ${c.name} appears twice in order`, "order");
    seen.add(c.name);
    return { name: c.name, sql: quoteIdent(c.name), cast: c.type, desc: m[2] === "desc", notNull: c.notNull };
  });
}

/** WHERE conditions from `?<col>=[not.]<op>.<value>`; pushes parameters onto `params`. */
export function parseFilters(t: Table, q: Query, params: Param[]): string[] {
  const where: string[] = [];
  for (const key of Object.keys(q)) {
    if (RESERVED.has(key)) continue;
    const col = columnOf(t, key, key);
    const raws = q[key];
    for (const raw of Array.isArray(raws) ? raws : [raws ?? ""]) {
      if (where.length >= MAX_FILTERS) throw badRequest("too_many_filters", `at most ${MAX_FILTERS} filters per request`, key);
      where.push(filter(col, raw, params));
    }
  }
  return where;
}

function filter(col: Column, raw: string, params: Param[]): string {
  const field = col.name;
  let rest = raw;
  let negate = false;
  if (rest.startsWith("not.")) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf(".");
  const op = (dot < 0 ? rest : rest.slice(0, dot)) as Op;
  if (dot < 0 || !OPS.includes(op)) {
    throw badRequest(
      dot < 0 ? "invalid_filter" : "unknown_operator",
      dot < 0
        ? `filter on ${field} must be <op>.<value> (e.g. ${field}=eq.1), got ${show(raw)}`
        : `unknown operator ${show(op)} for ${field}; use one of ${OPS.join(", ")} (optionally prefixed with not.)`,
      field,
    );
  }
  const value = rest.slice(dot + 1);
  const ident = quoteIdent(col.name);
  const bind = (v: unknown, cast: string) => {
    params.push({ value: v, cast, field, code: "invalid_value" });
    return `$${params.length}::${cast}`;
  };
  let cond: string;
  if (op === "is") {
    const sql = IS_VALUES[value];
    if (!sql) throw badRequest("invalid_value", `is takes null, notnull, true, false or unknown, not ${show(value)}`, field);
    if (!["null", "notnull"].includes(value) && col.category !== "B") {
      throw badRequest("unsupported_operator", `is.${value} needs a boolean column; ${field} is ${col.type}`, field);
    }
    cond = `${ident} ${sql}`;
  } else if (op === "like" || op === "ilike") {
    const target = col.category === "S" ? ident : `${ident}::text`;
    params.push({ value: value.replace(/\*/g, "%"), cast: "text", field, code: "invalid_value" });
    cond = `${target} ${op === "like" ? "LIKE" : "ILIKE"} $${params.length}`;
  } else if (op === "in") {
    if (!col.sortable || col.category === "A") throw badRequest("unsupported_operator", `in does not apply to ${field} (${col.type})`, field);
    if (!value.startsWith("(") || !value.endsWith(")")) {
      throw badRequest("invalid_list", `in takes a parenthesized list, e.g. ${field}=in.(1,2,3), got ${show(value)}`, field);
    }
    cond = `${ident} = ANY(${bind(parseList(value.slice(1, -1), field), `${col.type}[]`)})`;
  } else {
    if (!col.sortable) throw badRequest("unsupported_operator", `${op} does not apply to ${field} (${col.type}); like, ilike and is do`, field);
    cond = `${ident} ${COMPARE[op]} ${bind(value, col.type)}`;
  }
  return negate ? `NOT (${cond})` : cond;
}

/**
 * Rows strictly after the cursor position in the order `terms` (asc = NULLS LAST, desc = NULLS FIRST,
 * PostgreSQL's defaults). A row comparison when it is exact (one direction, no NULLs possible), which
 * an index can serve; else the expanded form (a = x AND b > y) OR (a > x) with NULL cases spelled out.
 */
export function keysetAfter(terms: OrderTerm[], values: (string | null)[], params: Param[]): string {
  const bind = (i: number) => {
    params.push({ value: values[i], cast: terms[i].cast, field: "cursor", code: "invalid_cursor" });
    return `$${params.length}::${terms[i].cast}`;
  };
  const oneWay = terms.every((t) => t.desc === terms[0].desc);
  if (oneWay && terms.every((t, i) => t.notNull && values[i] !== null)) {
    const refs = terms.map((_, i) => bind(i));
    return `(${terms.map((t) => t.sql).join(", ")}) ${terms[0].desc ? "<" : ">"} (${refs.join(", ")})`;
  }
  const refs = terms.map((_, i) => (values[i] === null ? null : bind(i)));
  const eq = (i: number) => (refs[i] === null ? `${terms[i].sql} IS NULL` : `${terms[i].sql} = ${refs[i]}`);
  const after = (i: number): string | undefined => {
    const t = terms[i];
    if (refs[i] === null) return t.desc ? `${t.sql} IS NOT NULL` : undefined; // nothing sorts after NULL when NULLS LAST
    if (t.desc) return `${t.sql} < ${refs[i]}`;
    return t.notNull ? `${t.sql} > ${refs[i]}` : `(${t.sql} > ${refs[i]} OR ${t.sql} IS NULL)`;
  };
  const ors: string[] = [];
  for (let i = 0; i < terms.length; i++) {
    const a = after(i);
    if (a === undefined) continue;
    ors.push([...terms.slice(0, i).map((_, j) => eq(j)), a].join(" AND "));
  }
  return ors.length ? `(${ors.map((o) => `(${o})`).join(" OR ")})` : "FALSE";
}

export function buildRowsQuery(t: Table, q: Query, limits: { defaultLimit: number; maxLimit: number }): RowsQuery {
  const select = parseSelect(t, single(q, "select"));
  const order = parseOrder(t, single(q, "order"));
  const limit = parseLimit(single(q, "limit"), limits.defaultLimit, limits.maxLimit);
  const cursor = single(q, "cursor");
  const params: Param[] = [];
  const where = parseFilters(t, q, params);
  // The order made total: requested columns, then the key parts not already in it.
  const terms: OrderTerm[] = [...order, ...t.key.filter((k) => !order.some((o) => o.name === k.name)).map((k) => ({ ...k, desc: false }))];
  const signature = `${t.schema}.${t.name}:${terms.map((x) => `${x.name}.${x.desc ? "desc" : "asc"}`).join(",")}`;
  if (cursor !== undefined) where.push(keysetAfter(terms, decodeCursor(cursor, signature, terms.length), params));
  // Aliased: an unnamed `id::text` would be called "id" and make ORDER BY "id" ambiguous.
  const cols = [...select.map((c) => quoteIdent(c.name)), ...terms.map((x, i) => `(${x.sql})::text AS "cndb.k${i}"`)];
  const sql =
    `SELECT ${cols.join(", ")} FROM ${t.sql}` +
    (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
    ` ORDER BY ${terms.map((x) => `${x.sql} ${x.desc ? "DESC NULLS FIRST" : "ASC NULLS LAST"}`).join(", ")}` +
    ` LIMIT ${limit + 1}`;
  return { sql, params, columns: select.map((c) => c.name), limit, keyCount: terms.length, signature };
}

/** The next-page cursor from the last row's trailing key texts (null when this was the last page). */
export function nextCursor(q: RowsQuery, lastRow: unknown[] | undefined): string | null {
  if (!lastRow) return null;
  return encodeCursor(q.signature, lastRow.slice(q.columns.length, q.columns.length + q.keyCount) as (string | null)[]);
}

/**
 * `/rows/:key`: one row by primary key. A one-column key is taken verbatim; a composite key is its
 * values in key order, comma-separated, double-quoted when a value holds a comma (`1,"a,b"`).
 */
export function buildRowQuery(t: Table, key: string, q: Query): BuiltQuery {
  if (!t.primaryKey.length) throw badRequest("no_primary_key", `${t.schema}.${t.name} has no primary key; use /rows with filters`, "key");
  for (const k of Object.keys(q)) if (k !== "select") throw badRequest("unknown_param", `a row by key takes only select, not ${show(k)}`, k);
  const select = parseSelect(t, single(q, "select"));
  const values = t.primaryKey.length === 1 ? [key] : parseList(key, "key");
  if (values.length !== t.primaryKey.length) {
    throw badRequest(
      "invalid_key",
      `${t.schema}.${t.name} has a ${t.primaryKey.length}-column primary key (${t.primaryKey.join(", ")}): give ${t.primaryKey.length} comma-separated values, double-quoted when they hold a comma`,
      "key",
    );
  }
  const params: Param[] = t.primaryKey.map((name, i) => ({ value: values[i], cast: t.byName.get(name)!.type, field: name, code: "invalid_key" }));
  const sql = `SELECT ${select.map((c) => quoteIdent(c.name)).join(", ")} FROM ${t.sql} WHERE ${t.primaryKey
    .map((name, i) => `${quoteIdent(name)} = $${i + 1}::${params[i].cast}`)
    .join(" AND ")}`;
  return { sql, params, columns: select.map((c) => c.name) };
}
