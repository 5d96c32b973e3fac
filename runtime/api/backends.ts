import { EventEmitter } from "node:events";
import pg from "pg";
import type { SnapshotManifest } from "../../common/snapshot";
import { ApiError, isConnectionError } from "./errors";
import { apiTypes } from "./pg-types";

/** One read-only replica the API may query: a PostgreSQL URL or pg.PoolConfig, and the snapshot it serves. */
export interface ReplicaSpec {
  id: string;
  url?: string;
  pool?: pg.PoolConfig;
  snapshot: SnapshotManifest;
}

export interface BackendsOptions {
  /** Connections per replica. @default 10 */
  poolSize?: number;
  /** Session statement_timeout of every connection. @default 5000 */
  statementTimeoutMs?: number;
  /** How often replicas marked down are probed again. @default 1000 */
  probeIntervalMs?: number;
  /** @default 3000 */
  connectTimeoutMs?: number;
  /** Called when a replica goes down or comes back (for logs). */
  onStateChange?: (replica: Replica, ready: boolean, reason?: string) => void;
}

export class Replica {
  /** False once a connection to it failed, until a probe succeeds. */
  ready = true;
  inflight = 0;
  retired = false;
  private ended?: Promise<void>;

  constructor(
    readonly spec: ReplicaSpec,
    readonly pool: pg.Pool,
  ) {}

  get id(): string {
    return this.spec.id;
  }
  get snapshot(): SnapshotManifest {
    return this.spec.snapshot;
  }

  /** Ends the pool once nothing runs on it any more. */
  end(): Promise<void> {
    this.ended ??= this.pool.end().catch(() => undefined);
    this.ended.then(this.markEnded);
    return this.ended;
  }

  private markEnded!: () => void;
  /** Resolves once end() has run: the replica serves nothing any more and may be stopped. */
  readonly whenEnded = new Promise<void>((resolve) => (this.markEnded = resolve));
}

function sameSpec(a: ReplicaSpec, b: ReplicaSpec): boolean {
  return a.id === b.id && a.url === b.url && a.snapshot.id === b.snapshot.id && JSON.stringify(a.pool) === JSON.stringify(b.pool);
}

/**
 * The mutable set of replicas behind the API, a pg.Pool each. `set()` swaps the whole set at once:
 * requests already running on a removed replica finish, then its pool ends. `run()` round-robins over
 * ready replicas; a connection failure marks that replica down and the request is retried once on
 * another one, so losing a replica costs no failed request when another is up.
 */
export class Backends extends EventEmitter {
  private list: Replica[] = [];
  private next = 0;
  private readonly opts: Required<Omit<BackendsOptions, "onStateChange">> & Pick<BackendsOptions, "onStateChange">;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(replicas: ReplicaSpec[] = [], opts: BackendsOptions = {}) {
    super();
    this.opts = { poolSize: 10, statementTimeoutMs: 5000, probeIntervalMs: 1000, connectTimeoutMs: 3000, ...opts };
    void this.set(replicas);
    this.timer = setInterval(() => void this.probe(true), this.opts.probeIntervalMs).unref();
  }

  /** The replicas of the current set. */
  replicas(): readonly Replica[] {
    return this.list;
  }

  /** The snapshot the current set serves (local mode switches the whole set at refresh). */
  get snapshot(): SnapshotManifest | undefined {
    return this.list[0]?.snapshot;
  }

  /**
   * Replaces the set atomically; unchanged replicas keep their pools, removed ones drain and end.
   * Resolves once every removed replica has finished its in-flight requests (safe to stop it then).
   */
  set(specs: ReplicaSpec[]): Promise<void> {
    if (this.closed) throw new Error("Backends: set() after close()");
    const ids = new Set<string>();
    for (const s of specs) {
      if (!s.id) throw new Error("Backends: every replica needs an id");
      if (ids.has(s.id)) throw new Error(`Backends: replica id ${s.id} given twice`);
      if (!s.url && !s.pool) throw new Error(`Backends: replica ${s.id} needs a url or a pool config`);
      ids.add(s.id);
    }
    const old = this.list;
    const next = specs.map((s) => old.find((r) => !r.retired && sameSpec(r.spec, s)) ?? new Replica(s, this.makePool(s)));
    this.list = next;
    const removed = old.filter((r) => !next.includes(r));
    for (const r of removed) {
      r.retired = true;
      if (r.inflight === 0) void r.end();
    }
    this.emit("change", next);
    return Promise.all(removed.map((r) => r.whenEnded)).then(() => undefined);
  }

  private makePool(s: ReplicaSpec): pg.Pool {
    const base: pg.PoolConfig = s.url ? { connectionString: s.url } : { ...s.pool };
    const pool = new pg.Pool({
      max: this.opts.poolSize,
      connectionTimeoutMillis: this.opts.connectTimeoutMs,
      idleTimeoutMillis: 30000,
      application_name: "cndb-api",
      ...base,
      statement_timeout: this.opts.statementTimeoutMs,
      // Belt and braces: the replica is a standby, but every transaction is read-only anyway.
      options: [base.options, "-c default_transaction_read_only=on"].filter(Boolean).join(" "),
      types: apiTypes,
    });
    // An idle client whose server went away emits here; without a listener the process would crash.
    pool.on("error", (e) => {
      const r = this.list.find((x) => x.pool === pool);
      if (r) this.markDown(r, e);
    });
    return pool;
  }

  /** Round-robin over ready replicas (over all of them when none is ready), skipping `exclude`. */
  pick(exclude?: Replica): Replica | undefined {
    const live = this.list.filter((r) => r !== exclude);
    const ready = live.filter((r) => r.ready);
    const from = ready.length ? ready : live;
    if (!from.length) return undefined;
    this.next = (this.next + 1) % 1_000_000_000;
    return from[this.next % from.length];
  }

  markDown(r: Replica, e: unknown): void {
    if (!r.ready) return;
    r.ready = false;
    this.opts.onStateChange?.(r, false, (e as Error)?.message);
  }

  /**
   * Runs `fn` with a pooled connection of one replica; on a connection failure marks it down and runs
   * `fn` once more on another replica. Returns which replica served (its snapshot labels the response).
   */
  async run<T>(fn: (client: pg.PoolClient, replica: Replica) => Promise<T>, first = this.pick()): Promise<{ value: T; replica: Replica }> {
    if (!first) throw new ApiError(503, "no_replica", "no replica is configured");
    try {
      return { value: await this.runOn(first, fn), replica: first };
    } catch (e) {
      if (!isConnectionError(e)) throw e;
      this.markDown(first, e);
      const second = this.pick(first);
      if (!second) throw unavailable(e);
      try {
        return { value: await this.runOn(second, fn), replica: second };
      } catch (e2) {
        if (!isConnectionError(e2)) throw e2;
        this.markDown(second, e2);
        throw unavailable(e2);
      }
    }
  }

  private async runOn<T>(r: Replica, fn: (client: pg.PoolClient, replica: Replica) => Promise<T>): Promise<T> {
    r.inflight++;
    try {
      const client = await r.pool.connect();
      let broken: Error | undefined;
      // While checked out, pg-pool listens no more: a connection dying between two queries would crash us.
      const onError = (e: Error) => (broken = e);
      client.on("error", onError);
      try {
        return await fn(client, r);
      } catch (e) {
        // A pg error with a SQLSTATE leaves the connection usable; anything else may not have.
        if (isConnectionError(e) || !(e instanceof ApiError || (e as { code?: string }).code?.length === 5)) broken ??= e as Error;
        throw e;
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    } finally {
      r.inflight--;
      if (r.retired && r.inflight === 0) void r.end();
    }
  }

  /** Checks replicas with `SELECT 1` (only those marked down when `downOnly`); true if any is ready. */
  async probe(downOnly = false): Promise<boolean> {
    await Promise.all(
      this.list
        .filter((r) => !downOnly || !r.ready)
        .map(async (r) => {
          try {
            await r.pool.query("SELECT 1");
            if (!r.ready && !r.retired) {
              r.ready = true;
              this.opts.onStateChange?.(r, true);
            }
          } catch (e) {
            this.markDown(r, e);
          }
        }),
    );
    return this.list.some((r) => r.ready);
  }

  /** Pool use per replica, for /metrics. */
  poolStats(): { id: string; total: number; idle: number; waiting: number; ready: boolean }[] {
    return this.list.map((r) => ({ id: r.id, total: r.pool.totalCount, idle: r.pool.idleCount, waiting: r.pool.waitingCount, ready: r.ready }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const all = this.list;
    this.list = [];
    await Promise.all(all.map((r) => r.end()));
  }
}

function unavailable(e: unknown): ApiError {
  return new ApiError(503, "replica_unavailable", `no replica could serve the request: ${(e as Error)?.message ?? e}`);
}
