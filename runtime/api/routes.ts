import type { FastifyInstance } from "fastify";
import { ApiError, show } from "./errors";
import { explainFailure, queryCapped, readOnly, statementName } from "./exec";
import { NOT_MODIFIED, type ApiContext } from "./context";
import { bindNamedParams, parseSqlBody } from "./queries";
import { buildRowQuery, buildRowsQuery, nextCursor } from "./rows";
import { snapshotAgeSeconds } from "./snapshot-info";

type Query = Record<string, string | string[] | undefined>;

const toObject = (names: string[], row: unknown[]) => {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < names.length; i++) o[names[i]] = row[i];
  return o;
};

export function registerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { config, backends, catalogs } = ctx;
  const send = <T>(reply: import("fastify").FastifyReply, v: T | typeof NOT_MODIFIED) => (v === NOT_MODIFIED ? reply.send() : reply.send(v));

  app.get("/healthz", { config: { group: "health" } }, async () => ({ status: "ok" }));

  app.get("/readyz", { config: { group: "health" } }, async (req, reply) => {
    const list = () => backends.replicas().map((r) => ({ id: r.id, ready: r.ready, snapshot: r.snapshot.id }));
    try {
      if (!(await backends.probe())) throw new ApiError(503, "no_replica_ready", backends.replicas().length ? "no replica answers" : "no replica is configured");
      // "snapshot loaded": its catalog can be read through a replica, and every named query prepares on it.
      const { replica } = await backends.run(async (client, r) => {
        await catalogs.get(client, r.snapshot);
        await ctx.queryChecks.get(client, r.snapshot);
      });
      return { status: "ready", snapshot: replica.snapshot.id, replicas: list() };
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(503, "not_ready", (e as Error).message);
      // a probe's body is not in the pod's events: say it in the log
      if (err.code === "bad_named_query") req.log.error({ error: err.code }, err.message);
      return reply.code(503).send({ status: "not_ready", ...err.body(), replicas: list() });
    }
  });

  app.get("/metrics", { config: { group: "metrics" } }, async (_req, reply) => {
    reply.header("content-type", ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get("/v1/snapshot", { config: { group: "snapshot" } }, async (_req, reply) => {
    const r = backends.pick();
    if (!r) throw new ApiError(503, "no_replica", "no replica is configured");
    reply.header("x-snapshot-id", r.snapshot.id).header("x-snapshot-created-at", r.snapshot.createdAt).header("cache-control", "no-cache");
    reply.request.cndb.snapshot = r.snapshot.id;
    return { ...r.snapshot, ageSeconds: snapshotAgeSeconds(r.snapshot) };
  });

  app.get("/v1/tables", { config: { group: "tables" } }, async (req, reply) => {
    const v = await ctx.serve(req, reply, { etag: true }, async (client, r) => {
      const cat = await catalogs.get(client, r.snapshot);
      return {
        snapshot: r.snapshot.id,
        tables: cat.tables.map((t) => ({
          schema: t.schema,
          name: t.name,
          kind: t.kind,
          rows: t.rows,
          primaryKey: t.primaryKey,
          columns: t.columns.map((c) => ({ name: c.name, type: c.type, nullable: !c.notNull })),
        })),
      };
    });
    return send(reply, v);
  });

  app.get<{ Params: { table: string }; Querystring: Query }>("/v1/tables/:table/rows", { config: { group: "rows" } }, async (req, reply) => {
    const v = await ctx.serve(req, reply, { etag: true }, async (client, r) => {
      const t = ctx.table(await catalogs.get(client, r.snapshot), req.params.table);
      const q = buildRowsQuery(t, req.query, config);
      const values = q.params.map((p) => p.value);
      let res;
      try {
        res = await client.query<unknown[]>({ name: statementName(client, q.sql), text: q.sql, values, rowMode: "array" });
      } catch (e) {
        throw await explainFailure(e, client, q.params, { timeoutMs: config.statementTimeoutMs });
      }
      const rows = res.rows.slice(0, q.limit);
      return { rows: rows.map((row) => toObject(q.columns, row)), cursor: res.rows.length > q.limit ? nextCursor(q, rows[rows.length - 1]) : null };
    });
    return send(reply, v);
  });

  app.get<{ Params: { table: string; key: string }; Querystring: Query }>("/v1/tables/:table/rows/:key", { config: { group: "rows" } }, async (req, reply) => {
    const v = await ctx.serve(req, reply, { etag: true }, async (client, r) => {
      const t = ctx.table(await catalogs.get(client, r.snapshot), req.params.table);
      const q = buildRowQuery(t, req.params.key, req.query);
      let res;
      try {
        res = await client.query<unknown[]>({ name: statementName(client, q.sql), text: q.sql, values: q.params.map((p) => p.value), rowMode: "array" });
      } catch (e) {
        throw await explainFailure(e, client, q.params, { timeoutMs: config.statementTimeoutMs });
      }
      if (!res.rows.length) throw new ApiError(404, "row_not_found", `no row in ${t.schema}.${t.name} with key ${show(req.params.key)}`, "key");
      return { row: toObject(q.columns, res.rows[0]) };
    });
    return send(reply, v);
  });

  app.get<{ Params: { name: string }; Querystring: Query }>("/v1/queries/:name", { config: { group: "queries" } }, async (req, reply) => {
    const name = req.params.name;
    const def = Object.hasOwn(config.queries, name) ? config.queries[name] : undefined;
    if (!def) {
      const names = Object.keys(config.queries);
      throw new ApiError(404, "unknown_query", `no named query ${show(name)}; configured: ${names.join(", ") || "none"}`.slice(0, 1000), "name");
    }
    const params = bindNamedParams(def, req.query);
    const v = await ctx.serve(req, reply, { etag: true }, async (client) => {
      try {
        return await readOnly(client, undefined, () => queryCapped(client, def.sql, params.map((p) => p.value), def.maxRows ?? config.maxRows));
      } catch (e) {
        throw await explainFailure(e, client, params, { timeoutMs: config.statementTimeoutMs });
      }
    });
    return send(reply, v === NOT_MODIFIED ? v : { rows: v.rows, truncated: v.truncated });
  });

  app.post("/v1/sql", { config: { group: "sql" } }, async (req, reply) => {
    if (!config.sql.enabled) throw new ApiError(404, "sql_disabled", "POST /v1/sql is disabled; set sql.enabled in the API config to allow it");
    const { sql, params } = parseSqlBody(req.body);
    const timeoutMs = config.sql.statementTimeoutMs;
    const v = await ctx.serve(req, reply, { etag: false }, async (client) => {
      try {
        return await readOnly(client, timeoutMs, () => queryCapped(client, sql, params, config.sql.maxRows));
      } catch (e) {
        throw await explainFailure(e, client, [], { timeoutMs, userSql: true });
      }
    });
    return send(reply, v);
  });
}
