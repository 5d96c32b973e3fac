import { chownSync, mkdirSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { pgRunAs } from "../pg/run-as";
import type { FastifyInstance } from "fastify";
import type { SnapshotManifest } from "../../common/snapshot";
import { Backends, buildApi, type ApiConfigInput } from "../api";
import type { WarmupMode } from "../reader";
import { startControlServer } from "./control";
import { DEMO_API_CONFIG } from "./demo-api-config";
import { ensurePostgres } from "./ensure-postgres";
import { LocalFleet } from "./fleet";
import { clearLeftovers, runningUp } from "./leftovers";
import { openMaster, type Master } from "./master";
import { bakeSnapshot, pruneSnapshots, readSnapshot, snapshotDir } from "./snapshots";
import { localPaths, readState, writeState, type LocalPaths, type LocalState } from "./state";

export interface UpOptions {
  /** @default ".cndb" */
  stateDir?: string;
  /** Bake from this master instead of a managed one. */
  master?: string;
  /** @default 2 */
  replicas?: number;
  /** Read API port. @default 8080 */
  port?: number;
  /** Read API listen address. @default "127.0.0.1" */
  listen?: string;
  /** Bake and switch on a schedule (ms). */
  refreshEveryMs?: number;
  warmup?: WarmupMode;
  /** Demo dataset scale for a new managed master (1 = about 1M rows). @default 1 */
  demoScale?: number;
  jobs?: number;
  apiConfig?: ApiConfigInput;
  log?: (line: string) => void;
}

export interface LocalStatus {
  master: { url: string; managed: boolean };
  api: { url: string };
  snapshot: { current: SnapshotBrief | null; previous: SnapshotBrief | null };
  replicas: { name: string; port: number; pid: number; snapshotId: string; ready: boolean; startupMs: number; url: string }[];
}
interface SnapshotBrief {
  id: string;
  createdAt: string;
  ageSeconds: number;
}

const brief = (m: SnapshotManifest): SnapshotBrief => ({
  id: m.id,
  createdAt: m.createdAt,
  ageSeconds: Math.max(0, Math.round((Date.now() - Date.parse(m.createdAt)) / 1000)),
});

/**
 * The whole pipeline on one machine: master -> bake -> fleet of read-only replicas -> read API, with
 * refresh, rollback and scale. `localUp` returns once the API serves; `stop()` undoes everything.
 */
export class LocalDeployment {
  private queue: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Aborts a bake in progress when we stop. */
  private readonly abort = new AbortController();

  private constructor(
    readonly paths: LocalPaths,
    private state: LocalState,
    readonly master: Master,
    private readonly backends: Backends,
    private readonly fleet: LocalFleet,
    private readonly api: FastifyInstance,
    private readonly control: FastifyInstance,
    readonly apiUrl: string,
    private desired: number,
    private readonly o: Required<Pick<UpOptions, "log">> & UpOptions,
  ) {}

  static async start(options: UpOptions = {}): Promise<LocalDeployment> {
    const o = { log: (l: string) => console.error(l), ...options };
    const replicas = o.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 16) throw new Error(`--replicas must be a whole number from 1 to 16 (got ${o.replicas})`);
    const port = o.port ?? 8080;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be a TCP port from 1 to 65535 (got ${o.port})`);
    const p = localPaths(o.stateDir ?? ".cndb");
    mkdirSync(p.root, { recursive: true, mode: 0o700 });
    // As root, PostgreSQL runs as an unprivileged account that must reach its dirs under the state dir.
    const who = pgRunAs();
    if (who) chownSync(p.root, who.uid, who.gid);
    const other = runningUp(p);
    if (other) throw new Error(`local mode is already running on ${p.root} (pid ${other}); stop it with Ctrl-C or kill ${other}`);
    clearLeftovers(p, o.log);
    writeFileSync(p.pidFile, `${process.pid}\n`);

    const undo: (() => Promise<unknown>)[] = [async () => rmSync(p.pidFile, { force: true })];
    const unwind = async () => {
      for (const f of undo.splice(0).reverse()) await f().catch((e: Error) => o.log(`cleanup: ${e.message}`));
    };
    try {
      const bin = await ensurePostgres(o.log);
      let state = readState(p);
      if (state && o.master === undefined && !state.master.managed) {
        throw new Error(`${p.root} was set up with --master ${state.master.url}: pass it again, or use another --state-dir`);
      }
      const { master } = await openMaster(p, state, { masterUrl: o.master, bin, demoScale: o.demoScale, log: o.log });
      undo.push(() => master.stop());
      state = { version: 1, master: { managed: master.managed, url: master.displayUrl, port: master.port }, snapshots: state?.snapshots ?? {} };
      writeState(p, state);

      let current = state.snapshots.current;
      if (current) {
        o.log(`reusing snapshot ${current}`);
        readSnapshot(p, current);
      } else {
        current = (await bakeSnapshot(p, master.url, { jobs: o.jobs, log: o.log })).id;
        state = { ...state, snapshots: { current } };
        writeState(p, state);
      }
      pruneSnapshots(p, [state.snapshots.current, state.snapshots.previous], o.log);

      const backends = new Backends([], {
        onStateChange: (r, ready, reason) => o.log(`api: replica ${r.id} ${ready ? "is back" : `is down (${reason ?? "?"})`}`),
      });
      undo.push(() => backends.close());
      const fleet = new LocalFleet({ backends, workRoot: p.replicas, snapshotDir: (id) => snapshotDir(p, id), warmup: o.warmup, log: o.log });
      undo.push(() => fleet.stopAll());
      await fleet.switchTo(current, replicas);

      const api = await buildApi({ backends, config: o.apiConfig ?? (master.managed ? DEMO_API_CONFIG : undefined), logger: false });
      undo.push(() => api.close());
      const host = o.listen ?? "127.0.0.1";
      await api.listen({ host, port }).catch((e: NodeJS.ErrnoException) => {
        throw new Error(e.code === "EADDRINUSE" ? `--port ${port}: ${host}:${port} is already in use; pick another with --port` : e.message);
      });
      const apiUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

      let self: LocalDeployment | undefined;
      const control = await startControlServer(p.controlSocket, {
        status: async () => self!.status(),
        refresh: () => self!.refresh(),
        rollback: () => self!.rollback(),
        scale: (n) => self!.scale(n),
      });
      undo.push(() => control.close());
      self = new LocalDeployment(p, state, master, backends, fleet, api, control, apiUrl, replicas, o);
      if (o.refreshEveryMs) self.schedule(o.refreshEveryMs);
      return self;
    } catch (e) {
      await unwind();
      throw e;
    }
  }

  /** One change at a time: refresh, rollback and scale never interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.stopped) throw new Error("local mode is stopping");
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  status(): LocalStatus {
    const { current, previous } = this.state.snapshots;
    const apiReady = new Map(this.backends.replicas().map((r) => [r.id, r.ready]));
    return {
      master: { url: this.master.displayUrl, managed: this.master.managed },
      api: { url: this.apiUrl },
      snapshot: {
        current: current ? brief(readSnapshot(this.paths, current)) : null,
        previous: previous ? brief(readSnapshot(this.paths, previous)) : null,
      },
      replicas: this.fleet.list().map((m) => ({
        name: m.name,
        port: m.replica.port,
        pid: m.replica.pid,
        snapshotId: m.replica.snapshotId,
        ready: m.serving && (apiReady.get(m.name) ?? false),
        startupMs: m.replica.startupMs,
        url: m.replica.url(),
      })),
    };
  }

  /** Bake from the master, start replicas of the new snapshot, switch, stop the old ones. */
  refresh(): Promise<{ snapshot: SnapshotBrief; previous: string | null; elapsedMs: number }> {
    return this.serial(async () => {
      const t0 = Date.now();
      this.o.log("refresh: baking a new snapshot from the master");
      const m = await bakeSnapshot(this.paths, this.master.url, { jobs: this.o.jobs, log: this.o.log, signal: this.abort.signal });
      try {
        await this.fleet.switchTo(m.id, this.desired);
      } catch (e) {
        pruneSnapshots(this.paths, [this.state.snapshots.current, this.state.snapshots.previous], this.o.log);
        throw e;
      }
      const previous = this.state.snapshots.current ?? null;
      this.setSnapshots(m.id, previous ?? undefined);
      this.o.log(`refresh: serving ${m.id} (was ${previous}) after ${Date.now() - t0} ms`);
      return { snapshot: brief(m), previous, elapsedMs: Date.now() - t0 };
    });
  }

  /** Serve the previous snapshot again (the current one becomes the previous). */
  rollback(): Promise<{ snapshot: SnapshotBrief; previous: string }> {
    return this.serial(async () => {
      const { current, previous } = this.state.snapshots;
      if (!previous || !current) throw new Error("no previous snapshot to roll back to (one is kept after each refresh)");
      await this.fleet.switchTo(previous, this.desired);
      this.setSnapshots(previous, current);
      this.o.log(`rollback: serving ${previous} (was ${current})`);
      return { snapshot: brief(readSnapshot(this.paths, previous)), previous: current };
    });
  }

  scale(n: number): Promise<{ replicas: number }> {
    return this.serial(async () => {
      if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`replicas must be a whole number from 1 to 16 (got ${n})`);
      await this.fleet.scale(n);
      this.desired = n;
      this.o.log(`scale: ${n} replicas`);
      return { replicas: n };
    });
  }

  private setSnapshots(current: string, previous: string | undefined): void {
    this.state = { ...this.state, snapshots: { current, previous } };
    writeState(this.paths, this.state);
    pruneSnapshots(this.paths, [current, previous], this.o.log);
  }

  private schedule(everyMs: number): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        this.refresh()
          .catch((e: Error) => this.o.log(`scheduled refresh failed, still serving ${this.state.snapshots.current}: ${e.message}`))
          .finally(() => !this.stopped && tick());
      }, everyMs);
    };
    tick();
  }

  /** Stops the API, the replicas (unmounting their working copies) and a managed master; keeps the state. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.queue;
    await this.control.close().catch(() => undefined);
    await this.api.close().catch(() => undefined);
    await this.fleet.stopAll();
    await this.backends.close();
    await this.master.stop();
    const pid = (() => {
      try {
        return Number(readFileSync(this.paths.pidFile, "utf8"));
      } catch {
        return 0;
      }
    })();
    if (pid === process.pid) rmSync(this.paths.pidFile, { force: true });
  }
}
