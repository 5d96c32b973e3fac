import { z } from "zod";

/**
 * The read API's config (api.json). Every key is optional; unknown keys are errors so that a typo
 * never silently disables a limit or a token. Shared: the API (runtime/api) validates the file at start,
 * and the deploy (components/config.ts) validates the stack's `api` key before anything is created.
 * Pure: reading the file and the token files stays in runtime/api/config.ts.
 */

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A PostgreSQL type name as written in a cast: `integer`, `timestamp with time zone`, `numeric(10,2)`, `text[]`. */
const PG_TYPE = /^[A-Za-z_][A-Za-z0-9_ .]*(\(\d+(,\s*\d+)?\))?(\[\])?$/;

/** What a token may be allowed: a route group, one named query (`queries/<name>`), or everything (`*`). */
export const ROUTE_GROUPS = ["snapshot", "tables", "rows", "queries", "sql", "metrics"] as const;
export type RouteGroup = (typeof ROUTE_GROUPS)[number];

const QueryParam = z
  .object({
    name: z.string().regex(IDENT, "must be an identifier (letters, digits, _)"),
    /** The PostgreSQL type the value must cast to (checked when a value is rejected, to name the param). */
    type: z.string().regex(PG_TYPE, "must be a PostgreSQL type name such as integer, text, date, numeric(10,2) or text[]").default("text"),
    /** @default true unless a default is given */
    required: z.boolean().optional(),
    default: z.union([z.string(), z.number(), z.boolean()]).optional(),
  })
  .strict();

const NamedQuery = z
  .object({
    /** One read-only statement with $1.. placeholders, in the order of `params`. */
    sql: z.string().min(1),
    params: z.array(QueryParam).default([]),
    description: z.string().optional(),
    /** Row cap for this query; the global `maxRows` when omitted. */
    maxRows: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((q, ctx) => {
    const used = [...q.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
    const max = used.length ? Math.max(...used) : 0;
    if (max !== q.params.length) {
      ctx.addIssue({ code: "custom", path: ["params"], message: `declares ${q.params.length} params but sql uses up to $${max}` });
    }
    const names = q.params.map((p) => p.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) ctx.addIssue({ code: "custom", path: ["params"], message: `param ${dup} is declared twice` });
    if (!/^\s*(\(\s*)*(select|with|values|table)\b/i.test(q.sql)) {
      ctx.addIssue({ code: "custom", path: ["sql"], message: "must be one read-only statement starting with SELECT, WITH, VALUES or TABLE" });
    }
  });

const Token = z
  .object({
    /** Shown in logs instead of the token. */
    name: z.string().min(1),
    /** Hex SHA-256 of the bearer token. */
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits (sha256 of the token)").optional(),
    /** A file holding the token itself (a mounted Kubernetes secret); read at start, re-read when it changes. */
    file: z.string().min(1).optional(),
    /** Allowed routes: snapshot, tables, rows, queries, queries/<name>, sql, metrics, or * for all. */
    routes: z
      .array(z.string().regex(new RegExp(`^(\\*|${ROUTE_GROUPS.join("|")}|queries/[A-Za-z_][A-Za-z0-9_]*)$`), `must be * or one of ${ROUTE_GROUPS.join(", ")}, queries/<name>`))
      .min(1),
  })
  .strict()
  .refine((t) => (t.sha256 === undefined) !== (t.file === undefined), { message: "give exactly one of sha256 or file" });

export const ApiConfigSchema = z
  .object({
    /** Rows returned by /rows without `limit`. @default 100 */
    defaultLimit: z.number().int().positive().default(100),
    /** The largest `limit` accepted; larger ones are a 400. @default 1000 */
    maxLimit: z.number().int().positive().max(100000).default(1000),
    /** Statement timeout for table reads and named queries. @default 5000 */
    statementTimeoutMs: z.number().int().positive().default(5000),
    /** Row cap of named queries. @default 10000 */
    maxRows: z.number().int().positive().default(10000),
    /** Cache-Control of data responses (data never changes within a snapshot; ETags revalidate). @default "no-cache" */
    cacheControl: z.string().default("no-cache"),
    /** Largest request body (POST /v1/sql). @default 65536 */
    bodyLimit: z.number().int().positive().default(65536),
    /** Connections per replica. @default 10 */
    poolSize: z.number().int().positive().max(1000).default(10),
    queries: z.record(z.string(), NamedQuery).default({}),
    sql: z
      .object({
        /** @default false */
        enabled: z.boolean().default(false),
        /** @default 2000 */
        statementTimeoutMs: z.number().int().positive().default(2000),
        /** @default 1000 */
        maxRows: z.number().int().positive().default(1000),
      })
      .strict()
      .default({ enabled: false, statementTimeoutMs: 2000, maxRows: 1000 }),
    auth: z.object({ tokens: z.array(Token).min(1) }).strict().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const name of Object.keys(c.queries)) {
      if (!IDENT.test(name)) ctx.addIssue({ code: "custom", path: ["queries", name], message: "query names must be identifiers (letters, digits, _)" });
    }
    if (c.defaultLimit > c.maxLimit) ctx.addIssue({ code: "custom", path: ["defaultLimit"], message: `must be <= maxLimit (${c.maxLimit})` });
    c.auth?.tokens.forEach((t, i) =>
      t.routes.forEach((r, j) => {
        const q = r.startsWith("queries/") ? r.slice(8) : undefined;
        if (q !== undefined && !(q in c.queries)) {
          ctx.addIssue({ code: "custom", path: ["auth", "tokens", i, "routes", j], message: `no named query ${q} in queries` });
        }
      }),
    );
  });

export type ApiConfig = z.output<typeof ApiConfigSchema>;
export type ApiConfigInput = z.input<typeof ApiConfigSchema>;
export type NamedQuery = z.output<typeof NamedQuery>;

/** Validates a config object; the error names the key path, e.g. `config.json: sql.statementTimeoutMs: ...`. */
export function parseConfig(json: unknown, where = "config"): ApiConfig {
  const r = ApiConfigSchema.safeParse(json ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${where}: ${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
  }
  return r.data;
}
