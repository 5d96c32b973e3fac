import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { READER_ROLE } from "../../common/contract";
import type { Backends, ReplicaSpec } from "../api/backends";
import { freePort } from "../pg/ports";
import { startReplica, type Replica, type WarmupMode } from "../reader";

export interface FleetMember {
  name: string;
  replica: Replica;
  /** False once it is leaving (scale down, switch) or has died. */
  serving: boolean;
}

export interface FleetOptions {
  backends: Backends;
  /** Parent of each replica's working copy. */
  workRoot: string;
  snapshotDir(id: string): string;
  warmup?: WarmupMode;
  log: (line: string) => void;
}

/**
 * The local stand-in for the Deployment + Service: N replicas of one snapshot behind the API's
 * balancer. Changes are made start-new-first: new replicas are ready before they take traffic, old ones
 * leave the balance first, finish their requests, then stop. A replica that dies is taken out at once
 * and replaced.
 */
export class LocalFleet {
  private members: FleetMember[] = [];
  private seq = 0;
  private snapshotId?: string;
  private closing = false;

  constructor(private readonly o: FleetOptions) {}

  get current(): string | undefined {
    return this.snapshotId;
  }

  list(): readonly FleetMember[] {
    return this.members;
  }

  /** Serve `snapshotId` with `n` replicas; resolves when the old set (if any) has drained and stopped. */
  async switchTo(snapshotId: string, n: number): Promise<void> {
    const fresh = await this.startMany(snapshotId, n);
    const old = this.members;
    this.members = fresh;
    this.snapshotId = snapshotId;
    await this.retire(old, this.publish());
  }

  async scale(n: number): Promise<void> {
    if (!this.snapshotId) throw new Error("nothing is being served yet");
    const serving = this.members.filter((m) => m.serving);
    if (n > serving.length) {
      const more = await this.startMany(this.snapshotId, n - serving.length);
      this.members = [...this.members, ...more];
      void this.publish();
    } else if (n < serving.length) {
      const leaving = serving.slice(n);
      this.members = this.members.filter((m) => !leaving.includes(m));
      await this.retire(leaving, this.publish());
    }
  }

  async stopAll(): Promise<void> {
    this.closing = true;
    const all = this.members;
    this.members = [];
    await this.o.backends.set([]);
    await Promise.all(all.map((m) => m.replica.stop().catch((e: Error) => this.o.log(`stop ${m.name}: ${e.message}`))));
  }

  private async startMany(snapshotId: string, n: number): Promise<FleetMember[]> {
    const started = await Promise.allSettled(Array.from({ length: n }, () => this.startOne(snapshotId)));
    const ok = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      await Promise.all(ok.map((m) => m.replica.stop().catch(() => undefined)));
      throw failed.reason;
    }
    return ok;
  }

  private async startOne(snapshotId: string): Promise<FleetMember> {
    const name = `r${++this.seq}`;
    const workDir = path.join(this.o.workRoot, name);
    mkdirSync(workDir, { recursive: true });
    const replica = await startReplica({
      snapshot: this.o.snapshotDir(snapshotId),
      port: await freePort(),
      workDir,
      warmup: this.o.warmup,
      log: (l) => this.o.log(`${name}: ${l}`),
    });
    const m: FleetMember = { name, replica, serving: true };
    this.o.log(`${name}: ${replica.readyLine} (pid ${replica.pid}, ${replica.workingCopy})`);
    void replica.exited.then((code) => {
      rmSync(workDir, { recursive: true, force: true }); // the replica already unmounted and removed its copy inside
      return this.onExit(m, code);
    });
    return m;
  }

  /** A replica we did not ask to stop has exited: out of the balance now, then a replacement. */
  private async onExit(m: FleetMember, code: number | null): Promise<void> {
    if (!m.serving || this.closing || !this.members.includes(m)) return;
    m.serving = false;
    this.members = this.members.filter((x) => x !== m);
    void this.publish();
    this.o.log(`${m.name}: exited unexpectedly (code ${code}); replacing it`);
    if (this.snapshotId !== m.replica.snapshotId) return;
    try {
      const [fresh] = await this.startMany(m.replica.snapshotId, 1);
      if (this.closing || this.snapshotId !== fresh.replica.snapshotId) {
        await fresh.replica.stop();
        return;
      }
      this.members = [...this.members, fresh];
      void this.publish();
    } catch (e) {
      this.o.log(`replacing ${m.name} failed: ${(e as Error).message}`);
    }
  }

  /** Resolves once the replicas this change took out of the balance have finished their requests. */
  private publish(): Promise<void> {
    const specs: ReplicaSpec[] = this.members
      .filter((m) => m.serving)
      .map((m) => ({
        id: m.name,
        // Over the replica's own socket as the baked SELECT-only role.
        pool: { host: m.replica.socketDir, port: m.replica.port, user: READER_ROLE, database: m.replica.manifest.source.database },
        snapshot: m.replica.manifest,
      }));
    return this.o.backends.set(specs);
  }

  /** Out of the balance already (publish() came first); wait for their in-flight requests, then stop them. */
  private async retire(leaving: FleetMember[], drained: Promise<void>): Promise<void> {
    for (const m of leaving) m.serving = false;
    await drained;
    await Promise.all(leaving.map((m) => m.replica.stop().catch((e: Error) => this.o.log(`stop ${m.name}: ${e.message}`))));
  }
}
