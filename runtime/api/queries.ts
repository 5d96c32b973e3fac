import type { NamedQuery } from "./config";
import { badRequest, show } from "./errors";
import { parseList, type Param } from "./rows";

type Query = Record<string, string | string[] | undefined>;

/** Binds `?<param>=...` to a named query's declared params (array types take a list: a,b or repeats). */
export function bindNamedParams(def: NamedQuery, q: Query): Param[] {
  const declared = new Set(def.params.map((p) => p.name));
  for (const k of Object.keys(q)) {
    if (!declared.has(k)) {
      throw badRequest("unknown_param", `unknown param ${show(k)}; this query takes ${def.params.map((p) => p.name).join(", ") || "no params"}`, k);
    }
  }
  return def.params.map((p): Param => {
    const raw = q[p.name];
    const isArray = p.type.endsWith("[]");
    let value: unknown;
    if (raw === undefined) {
      if (p.default !== undefined) value = p.default;
      else if (p.required === false) value = null;
      else throw badRequest("missing_param", `param ${p.name} (${p.type}) is required`, p.name);
    } else if (isArray) {
      value = (Array.isArray(raw) ? raw : [raw]).flatMap((r) => parseList(r, p.name));
    } else if (Array.isArray(raw)) {
      throw badRequest("repeated_param", `give ${p.name} once (it is a ${p.type}, not a list)`, p.name);
    } else {
      value = raw;
    }
    return { value, cast: p.type, field: p.name, code: "invalid_value" };
  });
}

const LEADING_NOISE = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/|\()*/;
const QUERY_KEYWORDS = ["select", "with", "values", "table", "explain", "show"];
const MAX_PARAMS = 1000;

type Scalar = string | number | boolean | null;
const isScalar = (v: unknown): v is Scalar => v === null || ["string", "number", "boolean"].includes(typeof v);

/** Validates a POST /v1/sql body: `{ "sql": "<one query>", "params": [scalars or arrays of scalars] }`. */
export function parseSqlBody(body: unknown): { sql: string; params: unknown[] } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("invalid_body", 'the body must be a JSON object {"sql": "...", "params": [...]}', "body");
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== "sql" && k !== "params") throw badRequest("invalid_body", `unknown key ${show(k)}; the body takes sql and params`, k);
  const sql = b.sql;
  if (typeof sql !== "string" || !sql.trim()) throw badRequest("invalid_sql", "sql must be a non-empty string", "sql");
  // The wire protocol ends query text at a NUL byte: refuse it rather than confuse the connection.
  if (sql.includes("\u0000")) throw badRequest("invalid_sql", "sql must not contain NUL characters", "sql");
  const first = /^[A-Za-z]+/.exec(sql.replace(LEADING_NOISE, ""))?.[0]?.toLowerCase();
  if (!first || !QUERY_KEYWORDS.includes(first)) {
    throw badRequest("not_a_query", `sql must be one read-only query starting with ${QUERY_KEYWORDS.map((k) => k.toUpperCase()).join(", ")}${first ? `, not ${first.toUpperCase()}` : ""}`, "sql");
  }
  const params = b.params ?? [];
  if (!Array.isArray(params)) throw badRequest("invalid_params", "params must be an array", "params");
  if (params.length > MAX_PARAMS) throw badRequest("invalid_params", `at most ${MAX_PARAMS} params`, "params");
  params.forEach((p, i) => {
    const ok = isScalar(p) || (Array.isArray(p) && p.length <= 100000 && p.every(isScalar));
    if (!ok) throw badRequest("invalid_params", `params[${i}] must be a string, number, boolean, null or an array of those`, `params[${i}]`);
    if (typeof p === "number" && !Number.isFinite(p)) throw badRequest("invalid_params", `params[${i}] must be a finite number`, `params[${i}]`);
  });
  return { sql, params };
}
