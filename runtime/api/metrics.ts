import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Backends } from "./backends";
import { snapshotAgeSeconds } from "./snapshot-info";

/** Prometheus metrics of one API instance (its own registry: several instances can share a process). */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "method" | "status">;
  readonly duration: Histogram<"route" | "method">;

  constructor(backends: Backends) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "cndb_api_" });
    this.requests = new Counter({ name: "cndb_api_requests_total", help: "HTTP requests by route pattern, method and status", labelNames: ["route", "method", "status"], registers });
    this.duration = new Histogram({
      name: "cndb_api_request_duration_seconds",
      help: "HTTP request latency by route pattern",
      labelNames: ["route", "method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    new Gauge({
      name: "cndb_api_pool_connections",
      help: "pg pool connections per replica: total, idle, and requests waiting for one",
      labelNames: ["replica", "state"],
      registers,
      collect() {
        this.reset();
        for (const s of backends.poolStats()) {
          this.set({ replica: s.id, state: "total" }, s.total);
          this.set({ replica: s.id, state: "idle" }, s.idle);
          this.set({ replica: s.id, state: "waiting" }, s.waiting);
        }
      },
    });
    new Gauge({
      name: "cndb_api_replica_ready",
      help: "1 when the replica is taking requests, 0 when marked down",
      labelNames: ["replica", "snapshot"],
      registers,
      collect() {
        this.reset();
        for (const r of backends.replicas()) this.set({ replica: r.id, snapshot: r.snapshot.id }, r.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: "cndb_api_snapshot_age_seconds",
      help: "Seconds since the served snapshot was taken on the master",
      labelNames: ["snapshot"],
      registers,
      collect() {
        this.reset();
        const s = backends.snapshot;
        if (s) this.set({ snapshot: s.id }, snapshotAgeSeconds(s));
      },
    });
  }
}
