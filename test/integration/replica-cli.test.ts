import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../runtime/pg/ports";
import { alive, errorOf, hashTree, mountsUnder } from "../helpers/replica";
import { makeTestSnapshot, type TestSnapshot } from "../helpers/snapshot";

const ROOT = path.resolve(__dirname, "../..");

interface Run {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cndb(args: string[]): Run {
  const proc = spawn(process.execPath, ["-r", "@swc-node/register", "runtime/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const run: Run = { proc, stdout: "", stderr: "", done: new Promise((r) => proc.once("exit", (code, signal) => r({ code, signal }))) };
  proc.stdout!.on("data", (d: Buffer) => (run.stdout += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

async function untilReady(run: Run): Promise<string> {
  while (!run.stdout.includes("\n")) {
    const exited = await Promise.race([run.done, new Promise((r) => setTimeout(r, 20))]);
    if (exited) throw new Error(`cndb replica exited before ready: ${run.stderr}`);
  }
  return run.stdout;
}

describe("replica: the cndb replica command", function () {
  this.timeout(60000);
  let snap: TestSnapshot;
  let work: string;
  let hash0: string;
  const runs: Run[] = [];

  before(async () => {
    snap = await makeTestSnapshot({ rows: 100 });
    hash0 = hashTree(snap.dir);
    work = mkdtempSync(path.join(os.tmpdir(), "cndb-rcli-"));
    chmodSync(work, 0o755);
  });
  after(async () => {
    for (const r of runs) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill("SIGTERM"), await r.done;
    snap?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    it(`prints one ready line, serves read-only, and stops cleanly on ${sig}`, async () => {
      const port = await freePort();
      const ready = path.join(work, `ready-${sig}`);
      const run = cndb(["replica", "--snapshot", snap.dir, "--port", String(port), "--work-dir", path.join(work, "w"), "--ready-file", ready]);
      runs.push(run);
      const out = await untilReady(run);
      assert.match(out, new RegExp(`^ready snapshot=${snap.manifest.id} port=${port} startup_ms=\\d+\\n$`));
      assert.equal(existsSync(ready), true);
      assert.match((await errorOf(`postgres://reader@127.0.0.1:${port}/${snap.database}`, "INSERT INTO items VALUES (0, 'x', 1, NULL)")) ?? "accepted", /read-only/);
      assert.equal(mountsUnder(work).length, 1);
      const pgPid = Number(/pid (\d+)/.exec(run.stderr)?.[1]);
      run.proc.kill(sig);
      assert.deepEqual(await run.done, { code: 0, signal: null });
      assert.equal(run.stdout, out, "more than the ready line on stdout");
      assert.equal(alive(pgPid), false);
      assert.deepEqual(mountsUnder(work), []);
      assert.deepEqual(readdirSync(path.join(work, "w")), []);
      assert.equal(existsSync(ready), false);
      assert.equal(hashTree(snap.dir), hash0);
    });
  }

  describe("bad input names the option", () => {
    const fails = async (args: string[], re: RegExp) => {
      const run = cndb(["replica", ...args]);
      runs.push(run);
      const { code } = await run.done;
      assert.notEqual(code, 0);
      assert.match(run.stderr, re);
      assert.equal(run.stdout, "");
      assert.deepEqual(mountsUnder(work), []);
    };

    it("a missing snapshot dir", async () => {
      await fails(["--snapshot", path.join(work, "nope"), "--port", "5999"], /--snapshot: .*nope does not exist/);
      await fails(["--port", "5999"], /required option '--snapshot <dir>' not specified/);
    });

    it("a bad manifest", async () => {
      const bad = path.join(work, "bad");
      rmSync(bad, { recursive: true, force: true });
      require("node:fs").cpSync(snap.dir, bad, { recursive: true });
      writeFileSync(path.join(bad, "snapshot.json"), JSON.stringify({ ...snap.manifest, postgresMajor: "fifteen" }));
      await fails(["--snapshot", bad, "--port", "5999"], /--snapshot: .*snapshot.json: postgresMajor: /);
      rmSync(bad, { recursive: true, force: true });
    });

    it("a port in use or out of range", async () => {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      const port = (s.address() as net.AddressInfo).port;
      const stale = path.join(work, "stale-ready");
      writeFileSync(stale, "ready snapshot=old port=1 startup_ms=1\n");
      try {
        await fails(["--snapshot", snap.dir, "--port", String(port), "--work-dir", path.join(work, "w"), "--ready-file", stale], new RegExp(`--port: 127.0.0.1:${port} is already in use`));
        assert.equal(existsSync(stale), false, "a stale ready file from a killed replica survived a failed start");
      } finally {
        s.close();
      }
      await fails(["--snapshot", snap.dir, "--port", "70000"], /option '--port <port>' argument '70000' is invalid. must be an integer from 1 to 65535/);
    });

    it("a bad --warmup value", async () => {
      await fails(["--snapshot", snap.dir, "--warmup", "hot"], /option '--warmup <mode>' argument 'hot' is invalid. Allowed choices are full, files, none/);
    });
  });
});
