import type { FastifyReply, FastifyRequest } from "fastify";
import type pg from "pg";
import type { Backends, Replica } from "./backends";
import type { Catalog, CatalogCache, Table } from "./catalog";
import type { ApiConfig } from "./config";
import type { ApiMetrics } from "./metrics";
import type { PerSnapshot } from "./per-snapshot";

/** What route handlers share. */
export interface ApiContext {
  config: ApiConfig;
  backends: Backends;
  catalogs: CatalogCache;
  metrics: ApiMetrics;
  /** The named queries, prepared once per snapshot before the API reports ready. */
  queryChecks: PerSnapshot<void>;
  /**
   * Runs `fn` on a replica and labels the response with the snapshot of the replica that served it.
   * With `etag`, a matching If-None-Match answers 304 without touching the database.
   */
  serve<T>(req: FastifyRequest, reply: FastifyReply, opts: { etag: boolean }, fn: (client: pg.PoolClient, replica: Replica) => Promise<T>): Promise<T | typeof NOT_MODIFIED>;
  table(catalog: Catalog, ref: string): Table;
}

export const NOT_MODIFIED = Symbol("304");
