import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import type { Backends, Replica } from "./backends";
import { CatalogCache } from "./catalog";
import { parseConfig, TokenStore, type ApiConfigInput, type RouteGroup } from "./config";
import { ApiError, show } from "./errors";
import { ApiMetrics } from "./metrics";
import { PerSnapshot } from "./per-snapshot";
import { checkNamedQueries } from "./query-check";
import { authorize } from "./auth";
import { NOT_MODIFIED, type ApiContext } from "./context";
import { registerRoutes } from "./routes";
import { etagFor, ifNoneMatchHits } from "./snapshot-info";

export { Backends, type ReplicaSpec } from "./backends";
export type { ApiConfig, ApiConfigInput } from "./config";

export interface ApiOptions {
  backends: Backends;
  /** A parsed config or the raw object (validated here); defaults when omitted. */
  config?: ApiConfigInput;
  /** fastify/pino logger options; one line per request at info level. @default false */
  logger?: FastifyServerOptions["logger"];
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route group a token must be allowed (health routes need none). */
    group?: RouteGroup | "health";
  }
  interface FastifyRequest {
    cndb: { token?: string; replica?: string; snapshot?: string; error?: string };
  }
}

/** statement_timeout last set on each pooled connection (module-wide: APIs may share a Backends). */
const timeouts = new WeakMap<object, number>();

/** The read API over a set of read-only replicas. Does not own `backends`: the caller closes them. */
export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const config = parseConfig(opts.config ?? {});
  // Called only from requests, once `app` exists.
  const tokens = TokenStore.from(config, (ok, message) => (ok ? app.log.info(message) : app.log.error(message)));
  const { backends } = opts;
  const catalogs = new CatalogCache();
  const queryChecks = new PerSnapshot((client) => checkNamedQueries(client, config.queries));
  const onChange = (replicas: Replica[]) => {
    catalogs.keepOnly(replicas.map((r) => r.snapshot.id));
    queryChecks.keepOnly(replicas.map((r) => r.snapshot.id));
  };
  backends.on("change", onChange);
  const metrics = new ApiMetrics(backends);

  const app = Fastify({
    logger: opts.logger ?? false,
    // We log one line per request ourselves (onResponse), without the query string.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    routerOptions: { maxParamLength: 4096 },
    // Bad percent-encoding or an overlong path segment: our error shape, not fastify's.
    frameworkErrors: (err, _req, reply) => {
      const tooLong = err.code === "FST_ERR_MAX_PARAM_LENGTH";
      const e = tooLong
        ? new ApiError(414, "path_too_long", "a path segment is longer than 4096 characters")
        : new ApiError(400, "bad_url", "the URL is not valid (bad percent-encoding or invalid UTF-8)");
      (reply as FastifyReply).code(e.status).send(e.body());
    },
    // Requests Node's HTTP parser refuses (raw non-ASCII bytes in the URL, bad headers) never reach routing.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (!socket.writable) return void socket.destroy(err);
      const what = err.code === "HPE_HEADER_OVERFLOW" ? "headers too large" : `malformed HTTP request (${err.code ?? "parse error"}): URLs must be ASCII with UTF-8 percent-encoding`;
      const body = JSON.stringify(new ApiError(400, "bad_http", what).body());
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  });
  app.decorateRequest("cndb", null as unknown as FastifyRequest["cndb"]);

  const label = (reply: FastifyReply, r: Replica) => {
    reply.header("x-snapshot-id", r.snapshot.id).header("x-snapshot-created-at", r.snapshot.createdAt);
    reply.request.cndb.replica = r.id;
    reply.request.cndb.snapshot = r.snapshot.id;
  };

  const ctx: ApiContext = {
    config,
    backends,
    catalogs,
    metrics,
    queryChecks,
    async serve(req, reply, o, fn) {
      const first = backends.pick();
      if (!first) throw new ApiError(503, "no_replica", "no replica is configured");
      const tagOf = (r: Replica) => etagFor(r.snapshot.id, req.method, req.url);
      if (o.etag && ifNoneMatchHits(req.headers["if-none-match"], tagOf(first))) {
        label(reply, first);
        reply.header("etag", tagOf(first)).header("cache-control", config.cacheControl).code(304);
        return NOT_MODIFIED;
      }
      const { value, replica } = await backends.run(async (client, r) => {
        label(reply, r);
        // The config's timeout, whatever the pool was opened with: set once per pooled connection.
        if (timeouts.get(client) !== config.statementTimeoutMs) {
          await client.query(`SET statement_timeout = ${config.statementTimeoutMs}`);
          timeouts.set(client, config.statementTimeoutMs);
        }
        return fn(client, r);
      }, first);
      if (o.etag) reply.header("etag", tagOf(replica)).header("cache-control", config.cacheControl);
      else reply.header("cache-control", "no-store");
      return value;
    },
    table(catalog, ref) {
      const t = catalog.find(ref);
      if (t) return t;
      const c = catalog.candidates(ref);
      if (c.length > 1) throw new ApiError(400, "ambiguous_table", `table ${show(ref)} exists in several schemas; use one of ${c.join(", ")}`, "table");
      const names = catalog.tables.map((x) => `${x.schema}.${x.name}`);
      throw new ApiError(
        404,
        "unknown_table",
        `no table ${show(ref)}; tables: ${names.slice(0, 30).join(", ")}${names.length > 30 ? `, … (${names.length} in all, see /v1/tables)` : ""}`,
        "table",
      );
    },
  };

  app.addHook("onRequest", async (req) => {
    req.cndb = {};
    const group = req.routeOptions.config?.group;
    if (!tokens || !group || group === "health") return;
    const name = group === "queries" ? (req.params as { name?: string }).name : undefined;
    req.cndb.token = authorize(tokens.current(), req.headers.authorization, group, name).name;
  });

  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "(unmatched)";
    metrics.requests.inc({ route, method: req.method, status: reply.statusCode });
    metrics.duration.observe({ route, method: req.method }, reply.elapsedTime / 1000);
    const p = (req.params ?? {}) as { table?: string; name?: string };
    // One line per request: no query string, no key values, no token (only its name).
    req.log.info(
      {
        method: req.method,
        route,
        table: p.table?.slice(0, 200),
        query: p.name?.slice(0, 200),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        replica: req.cndb?.replica,
        snapshot: req.cndb?.snapshot,
        token: req.cndb?.token,
        error: req.cndb?.error,
      },
      "request",
    );
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    let e: ApiError;
    if (err instanceof ApiError) e = err;
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) e = new ApiError(err.statusCode, frameworkCode(err), err.message);
    else {
      req.log.error({ err: { message: err.message, code: err.code, stack: err.stack } }, "request failed");
      e = new ApiError(500, "internal", "internal error; the API log has the details");
    }
    if (req.cndb) req.cndb.error = e.code;
    if (e.status === 401) reply.header("www-authenticate", 'Bearer realm="cndb"');
    reply.code(e.status).send(e.body());
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0];
    const e = new ApiError(404, "not_found", `no route ${req.method} ${show(path, 200)}; see GET /v1/tables, /v1/snapshot, /v1/queries/:name, /healthz`);
    req.cndb ??= {};
    req.cndb.error = e.code;
    reply.code(404).send(e.body());
  });

  registerRoutes(app, ctx);
  app.addHook("onClose", async () => {
    backends.off("change", onChange);
  });
  await app.ready();
  return app;
}

function frameworkCode(err: { code?: string; statusCode?: number }): string {
  switch (err.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported_media_type";
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "body_too_large";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return "invalid_body";
    default:
      return err.statusCode === 400 ? "invalid_body" : "bad_request";
  }
}
