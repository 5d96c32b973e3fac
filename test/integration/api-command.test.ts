import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { freePort } from "../../runtime/pg/ports";
import { startApiFixture, type ApiFixture } from "../helpers/api-fixture";

const ROOT = path.join(__dirname, "..", "..");

function cndb(args: string[]): { proc: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ["-r", "@swc-node/register", "runtime/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return { proc, out: () => out, err: () => err, exit };
}

describe("cndb api (the command)", function () {
  this.timeout(60000);
  let f: ApiFixture;
  const running: ChildProcess[] = [];
  before(async () => (f = await startApiFixture()));
  after(async () => {
    for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
    await f?.stop();
  });

  it("serves the snapshot over its replicas, logs one JSON line per request, stops on SIGTERM", async () => {
    const port = await freePort();
    const config = path.join(f.master.dir, "api.json");
    writeFileSync(config, JSON.stringify({ queries: { one: { sql: "SELECT name FROM items WHERE id = $1", params: [{ name: "id", type: "integer" }] } } }));
    const c = cndb(["api", "--replica", f.readerUrl, "--replica", f.readerUrl, "--snapshot", f.snapshotDir, "--port", String(port), "--config", config]);
    running.push(c.proc);
    for (let i = 0; i < 300 && !c.out().includes("api listening"); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(c.out(), new RegExp(`api listening url=http://127\\.0\\.0\\.1:${port} snapshot=${f.snapshot.id} replicas=2`), c.err());
    const r = await fetch(`http://127.0.0.1:${port}/v1/queries/one?id=5`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-snapshot-id"), f.snapshot.id);
    assert.deepEqual(((await r.json()) as { rows: unknown[] }).rows, [{ name: "item 5" }]);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    c.proc.kill("SIGTERM");
    assert.equal(await c.exit, 0, c.err());
    const lines = c.out().split("\n").filter((l) => l.startsWith("{"));
    const reqs = lines.map((l) => JSON.parse(l)).filter((j) => j.msg === "request");
    assert.deepEqual(reqs.map((j) => [j.route, j.status]), [["/v1/queries/:name", 200], ["/readyz", 200]]);
    assert.ok(!c.out().includes(f.master.password) && !c.out().includes("reader-secret"), "no secrets in the log");
  });

  it("refuses bad options and config with a message naming them", async () => {
    const bad = path.join(f.master.dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ sql: { enabled: "yes" } }));
    const cases: [string[], RegExp][] = [
      [["api", "--snapshot", f.snapshotDir], /--replica/],
      [["api", "--replica", f.readerUrl, "--snapshot", "/nonexistent"], /--snapshot: cannot read \/nonexistent\/snapshot\.json/],
      [["api", "--replica", f.readerUrl, "--snapshot", f.snapshotDir, "--port", "http"], /--port: expected a port number/],
      [["api", "--replica", f.readerUrl, "--snapshot", f.snapshotDir, "--port", "0", "--config", bad], /sql\.enabled: .*boolean/],
    ];
    for (const [args, re] of cases) {
      const c = cndb(args);
      running.push(c.proc);
      const code = await c.exit;
      assert.notEqual(code, 0, args.join(" "));
      assert.match(c.err(), re, args.join(" "));
    }
  });
});
