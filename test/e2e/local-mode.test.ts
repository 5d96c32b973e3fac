import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../../runtime/pg/ports";
import { mountsUnder } from "../../runtime/local/leftovers";
import type { LocalStatus } from "../../runtime/local/up";
import { startLoad } from "../helpers/load";

const ROOT = path.resolve(__dirname, "../..");

/** `npm run cndb -- local ...` as a user would run it (the CLI, real processes). */
function cndb(args: string[], opts: { stdio?: "pipe" } = {}): ChildProcess {
  return spawn(process.execPath, ["-r", "@swc-node/register", path.join(ROOT, "runtime/cli.ts"), ...args], { cwd: ROOT, stdio: opts.stdio ?? "pipe" });
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = cndb(args);
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (d) => (stdout += d));
  p.stderr!.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => p.on("exit", r));
  return { code, stdout, stderr };
}

/** Postgres processes whose command line names the state dir (the master's data dir, replicas' copies). */
function postgresUnder(dir: string): number[] {
  const out: number[] = [];
  for (const pid of require("node:fs").readdirSync("/proc").filter((d: string) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.includes(dir)) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe("local mode (npm start): the whole pipeline on this machine", function () {
  this.timeout(240_000);
  let state: string;
  let up: ChildProcess;
  let upErr = "";
  let api: string;
  const local = (...a: string[]) => run(["local", "--state-dir", state, ...a]);
  const status = async (): Promise<LocalStatus> => {
    const r = await local("status", "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  before(async () => {
    state = mkdtempSync(path.join(os.tmpdir(), "cndb-e2e-"));
    const port = await freePort();
    up = cndb(["local", "--state-dir", state, "up", "--demo-scale", "0.02", "--replicas", "2", "--port", String(port), "--jobs", "2"]);
    let out = "";
    up.stderr!.on("data", (d) => (upErr += d));
    await new Promise<void>((resolve, reject) => {
      up.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("Press Ctrl-C")) resolve();
      });
      up.on("exit", (code) => reject(new Error(`local up exited (${code}) before serving:\n${upErr}`)));
    });
    api = `http://127.0.0.1:${port}`;
    assert.match(out, /read API\s+http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /serving snapshot \d{8}T\d{6}Z-[0-9a-f]{6}/);
  });

  after(async () => {
    if (up && up.exitCode === null) {
      up.kill("SIGINT");
      await new Promise((r) => up.once("exit", r));
    }
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("serves the baked demo dataset through the API, and status --json has the documented keys", async () => {
    const s = await status();
    assert.match(s.master.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    assert.doesNotMatch(JSON.stringify(s), /password|:[^@/]+@/i);
    assert.equal(s.api.url, api);
    assert.ok(s.snapshot.current?.id && s.snapshot.current.createdAt);
    assert.equal(s.replicas.length, 2);
    for (const r of s.replicas) {
      assert.ok(r.port > 0 && r.pid > 0 && r.ready);
      assert.equal(r.snapshotId, s.snapshot.current.id);
    }
    const res = await fetch(`${api}/v1/tables/automl.trials/rows?limit=3&order=id.asc`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-snapshot-id"), s.snapshot.current.id);
    const body = (await res.json()) as { rows: { id: string }[] };
    assert.deepEqual(body.rows.map((r) => r.id), ["1", "2", "3"]);
    // The demo's named queries (local mode's default API config for its own master).
    const q = await fetch(`${api}/v1/queries/best_trials?experiment=7&limit=3`);
    assert.equal(q.status, 200, await q.clone().text());
    const best = (await q.json()) as { rows: { score: number }[] };
    assert.ok(best.rows.length > 0 && best.rows.length <= 3);
    assert.deepEqual([...best.rows].map((r) => r.score), [...best.rows].map((r) => r.score).sort((a, b) => b - a));
  });

  it("a row written to the master is invisible until refresh, visible after it under a new snapshot id", async () => {
    const before = await status();
    const masterUrl = new URL(before.master.url);
    masterUrl.password = readFileSync(path.join(state, "pgpass"), "utf8").split("\n")[0].split(":").slice(4).join(":");
    const c = new pg.Client({ connectionString: masterUrl.toString() });
    await c.connect();
    await c.query("INSERT INTO automl.projects (id, name, owner, tags, created_at) VALUES (424242, 'fresh', 'e2e', '{}', now())");
    await c.end();
    assert.equal((await fetch(`${api}/v1/tables/automl.projects/rows/424242`)).status, 404);

    const load = startLoad([`${api}/v1/tables/automl.projects/rows/1`, `${api}/v1/tables/automl.trials/rows?limit=20&algorithm=eq.xgboost`], { clients: 6 });
    const r = await local("refresh");
    const result = await load.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(result.failed, [], "no request may fail during a refresh");
    assert.ok(result.ok > 0);

    const res = await fetch(`${api}/v1/tables/automl.projects/rows/424242`);
    assert.equal(res.status, 200);
    const after = await status();
    assert.notEqual(after.snapshot.current!.id, before.snapshot.current!.id);
    assert.equal(res.headers.get("x-snapshot-id"), after.snapshot.current!.id);
    assert.equal(after.snapshot.previous!.id, before.snapshot.current!.id);
    assert.ok(after.replicas.every((x) => x.snapshotId === after.snapshot.current!.id), "old replicas are gone");
  });

  it("scale up, scale down and rollback under load: zero failed requests", async () => {
    const s0 = await status();
    const load = startLoad([`${api}/v1/tables/automl.experiments/rows?limit=5&order=id.desc`, `${api}/v1/snapshot`], { clients: 6 });
    assert.equal((await local("scale", "4")).code, 0);
    assert.equal((await status()).replicas.length, 4);
    assert.equal((await local("scale", "1")).code, 0);
    assert.equal((await status()).replicas.length, 1);
    const rb = await local("rollback");
    assert.equal(rb.code, 0, rb.stderr);
    const result = await load.stop();
    assert.deepEqual(result.failed, []);
    const s1 = await status();
    assert.equal(s1.snapshot.current!.id, s0.snapshot.previous!.id);
    assert.equal(s1.snapshot.previous!.id, s0.snapshot.current!.id);
    assert.equal((await fetch(`${api}/v1/tables/automl.projects/rows/424242`)).status, 404, "the rolled-back snapshot predates the row");
    assert.equal((await local("scale", "2")).code, 0);
  });

  it("bad control input is refused with a message naming it", async () => {
    const r = await local("scale", "0");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /replicas must be a whole number from 1 to 16/);
  });

  it("kill -9 of a replica under load: requests keep succeeding and it is replaced", async () => {
    const s0 = await status();
    const victim = s0.replicas[0];
    const load = startLoad([`${api}/v1/tables/automl.models/rows?limit=10`], { clients: 8 });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(victim.pid, "SIGKILL");
    let replaced = false;
    for (let i = 0; i < 200 && !replaced; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const s = await status();
      replaced = s.replicas.length === 2 && s.replicas.every((x) => x.ready) && !s.replicas.some((x) => x.pid === victim.pid);
    }
    const result = await load.stop();
    assert.ok(replaced, "the killed replica was replaced");
    assert.deepEqual(result.failed, []);
    assert.ok(result.ok > 0);
  });

  it("Ctrl-C stops everything: no process and no mount left, and the state is kept", async () => {
    up.kill("SIGINT");
    const code = await new Promise<number | null>((r) => up.once("exit", r));
    assert.equal(code, 0, upErr.slice(-2000));
    assert.deepEqual(postgresUnder(state), []);
    assert.deepEqual(mountsUnder(state), []);
    assert.ok(existsSync(path.join(state, "state.json")));
    assert.ok(!existsSync(path.join(state, "control.sock")));
    const r = await local("status");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no local deployment is running/);
  });
});
