/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.x) on 127.0.0.1 with its
 * own config, storage dir and free port. Auth: none, htpasswd (Basic), or token (Bearer, with a small
 * token service of ours on loopback that signs JWTs with a throwaway self-signed certificate).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, createSign, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../runtime/pg/ports";

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  url: string;
  dir: string;
  /** Requests the token service saw (Bearer mode): scopes asked for, and whether credentials were right. */
  tokenRequests: { scope: string[]; authorized: boolean }[];
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: { kind: "htpasswd" | "token"; user: string; password: string };
}

function aptInstall(pkg: string): void {
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", pkg], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

/** Installs a Debian package when `probe` is not on disk (CI lists them in .ci/run too). */
function ensurePackage(probe: string, pkg: string): void {
  if (existsSync(probe)) return;
  try {
    aptInstall(pkg);
  } catch {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
    aptInstall(pkg);
  }
  if (!existsSync(probe)) throw new Error(`installing ${pkg} did not provide ${probe}`);
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** A token service in the style of Docker's: GET /token?service=&scope= with Basic credentials -> a signed JWT. */
async function startTokenService(dir: string, user: string, password: string, seen: TestRegistry["tokenRequests"]) {
  ensurePackage("/usr/bin/openssl", "openssl");
  const key = path.join(dir, "token.key");
  const cert = path.join(dir, "token.crt");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=cndb-test-token"], { stdio: "ignore" });
  const privateKey = createPrivateKey(readFileSync(key));
  const der = Buffer.from(readFileSync(cert, "utf8").replace(/-----[^-]+-----|\s/g, ""), "base64").toString("base64");
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const scope = u.searchParams.getAll("scope");
    const authorized = req.headers.authorization === expected;
    seen.push({ scope, authorized });
    if (!authorized) {
      res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scope.map((s) => {
      const [type, ...rest] = s.split(":");
      const actions = rest.pop()!.split(",");
      return { type, name: rest.join(":"), actions };
    });
    const header = { alg: "RS256", typ: "JWT", x5c: [der] };
    const claims = { iss: "cndb-test-issuer", sub: user, aud: u.searchParams.get("service"), exp: now + 600, nbf: now - 10, iat: now, jti: randomBytes(8).toString("hex"), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign("RSA-SHA256").update(input).sign(privateKey);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `${input}.${b64url(sig)}`, expires_in: 600 }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { server, cert, realm: `http://127.0.0.1:${port}/token` };
}

export async function startTestRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  ensurePackage("/usr/bin/docker-registry", "docker-registry");
  const dir = mkdtempSync(path.join(os.tmpdir(), "cndb-registry-"));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const tokenRequests: TestRegistry["tokenRequests"] = [];
  let token: Awaited<ReturnType<typeof startTokenService>> | undefined;
  let auth: object | undefined;
  if (opts.auth?.kind === "htpasswd") {
    ensurePackage("/usr/bin/htpasswd", "apache2-utils");
    // distribution accepts bcrypt entries only
    const line = execFileSync("htpasswd", ["-Bbn", opts.auth.user, opts.auth.password]).toString().trim();
    writeFileSync(path.join(dir, "htpasswd"), line + "\n");
    auth = { htpasswd: { realm: "cndb-test", path: path.join(dir, "htpasswd") } };
  } else if (opts.auth?.kind === "token") {
    token = await startTokenService(dir, opts.auth.user, opts.auth.password, tokenRequests);
    auth = { token: { realm: token.realm, service: "cndb-test-registry", issuer: "cndb-test-issuer", rootcertbundle: token.cert } };
  }
  // JSON is YAML: the registry reads it as its config.yml.
  const config = {
    version: 0.1,
    log: { level: "error", accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: path.join(dir, "storage") }, delete: { enabled: true } },
    http: { addr: host, secret: randomBytes(16).toString("hex") },
    ...(auth ? { auth } : {}),
  };
  const configFile = path.join(dir, "config.yml");
  writeFileSync(configFile, JSON.stringify(config));
  const logFile = path.join(dir, "registry.log");
  const log = openSync(logFile, "a");
  const proc: ChildProcess = spawn("/usr/bin/docker-registry", ["serve", configFile], { stdio: ["ignore", log, log] });
  let exited = false;
  const exit = new Promise<void>((r) => proc.once("exit", () => ((exited = true), r())));
  const stop = async () => {
    if (!exited) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(t);
    }
    await new Promise<void>((r) => (token ? token.server.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited || Date.now() > deadline) {
      const tail = readFileSync(logFile, "utf8").slice(-2000);
      await stop();
      throw new Error(`docker-registry did not come up on ${host}:\n${tail}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, url: `http://${host}`, dir, tokenRequests, stop };
}
