import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { freePort } from "../../runtime/pg/ports";
import { onCleanup } from "./cleanup";
import { sleep } from "./proc";

const ROOT = path.join(__dirname, "..", "..");

export interface ApiProcess {
  url: URL;
  pid: number;
  stop(): Promise<void>;
}

/**
 * `cndb api` in a child process of its own (as it runs in the fleet), so the load generator does not
 * share its event loop; or, with `floor`, the minimal server of floor-api.ts over the first replica. Its
 * request log goes to /dev/null; its stderr tail is kept for errors.
 */
export async function startApiProcess(opts: { replicaUrls: string[]; snapshotDir: string; floor?: { poolSize: number } }): Promise<ApiProcess> {
  const port = await freePort();
  let args: string[];
  if (opts.floor) {
    args = ["-r", "@swc-node/register", path.join(__dirname, "floor-api.ts"), String(port), opts.replicaUrls[0], String(opts.floor.poolSize)];
  } else {
    args = ["-r", "@swc-node/register", path.join(ROOT, "runtime", "cli.ts"), "api", "--snapshot", opts.snapshotDir, "--port", String(port), "--listen", "127.0.0.1"];
    for (const u of opts.replicaUrls) args.push("--replica", u);
  }
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let alive = true;
  void exited.then(() => (alive = false));
  const stop = onCleanup(`api pid ${child.pid}`, async () => {
    if (alive) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }
  });
  const url = new URL(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!alive) {
      await stop();
      throw new Error(`cndb api exited during start-up: ${stderr.trim().split("\n").slice(-5).join("\n")}`);
    }
    if ((await status(url, "/readyz")) === 200) return { url, pid: child.pid!, stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`cndb api did not become ready within 60 s: ${stderr.trim().split("\n").slice(-5).join("\n")}`);
}

function status(base: URL, p: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: base.hostname, port: base.port, path: p }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(1000, () => req.destroy());
    req.on("error", () => resolve(0));
  });
}
