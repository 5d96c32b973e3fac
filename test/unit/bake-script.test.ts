import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { bakeArgs, type BakeSpec, initialSnapshotTag, renderBakeScript, shq } from "../../components/bake-script";

const spec: BakeSpec = {
  sourceUrl: "postgres://db.example.internal:5432/app?sslmode=require",
  sourceSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-x-AbCdEf",
  baseImage: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tools:tools-0123456789abcdef",
  repositoryUrl: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/snapshots",
  namespace: "cndb-acme",
  deployment: "reader",
  containers: ["reader", "api"],
  jobs: 4,
  schemas: ["public", "it's"],
  includeTables: [],
  excludeTables: ["public.audit_log"],
};

/**
 * Runs the rendered script for real (bash) with stub `node` and `kubectl` first on PATH: the stub node
 * plays `cndb bake --json` (and hands `node -e` to the real node), the stub kubectl answers as told.
 */
function runScript(kubectlMode: "found" | "notfound" | "forbidden", env: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "cndb-bake-script-"));
  try {
    const bin = path.join(dir, "bin");
    execFileSync("mkdir", ["-p", bin, path.join(dir, "work")]);
    const manifest = { manifest: { id: "20250101T000000Z-abcdef", image: { manifestDigest: "sha256:feed", layerDigest: "sha256:beef", ref: `${spec.repositoryUrl}:v7-abc` } } };
    writeFileSync(
      path.join(bin, "node"),
      `#!/bin/bash
if [ "$1" = "-e" ]; then exec ${shq(process.execPath)} "$@"; fi
printf '%s\\n' "$@" > ${shq(path.join(dir, "bake-args"))}
echo ${shq(JSON.stringify(manifest))}
`,
    );
    writeFileSync(
      path.join(bin, "kubectl"),
      `#!/bin/bash
echo "$*" >> ${shq(path.join(dir, "kubectl-calls"))}
case "$KUBECTL_MODE:$3" in
  found:get) echo deployment.apps/reader ;;
  notfound:get) echo 'Error from server (NotFound): deployments.apps "reader" not found' >&2; exit 1 ;;
  forbidden:get) echo 'Error from server (Forbidden): nope' >&2; exit 1 ;;
esac
`,
    );
    chmodSync(path.join(bin, "node"), 0o755);
    chmodSync(path.join(bin, "kubectl"), 0o755);
    const script = path.join(dir, "bake.sh");
    writeFileSync(script, renderBakeScript(spec, path.join(dir, "work")));
    const r = spawnSync("/bin/bash", [script], {
      env: { PATH: `${bin}:/usr/bin:/bin`, KUBECTL_MODE: kubectlMode, READER_PASSWORD: "pw", ...env },
      encoding: "utf8",
    });
    const read = (f: string) => {
      try {
        return readFileSync(path.join(dir, f), "utf8");
      } catch {
        return "";
      }
    };
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, bakeArgs: read("bake-args").trim().split("\n"), kubectl: read("kubectl-calls") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("bake script (components/bake-script.ts)", () => {
  it("is valid bash and holds no secret", () => {
    const text = renderBakeScript(spec);
    execFileSync("/bin/bash", ["-n"], { input: text });
    assert.doesNotMatch(text, /password=|:\/\/[^/@]*:[^/@]*@/i, "no credentials in the script");
  });

  it("passes every option to cndb bake, quoted", () => {
    const r = runScript("found", { SNAPSHOT_TAG: "v7-abc" });
    assert.equal(r.status, 0, r.stderr);
    const push = r.bakeArgs.indexOf("--push");
    assert.equal(r.bakeArgs[push + 1], `${spec.repositoryUrl}:v7-abc`);
    assert.equal(r.bakeArgs[0], "/app/bin/runtime/cli.js");
    assert.deepEqual(r.bakeArgs.slice(1, push), bakeArgs(spec, r.bakeArgs[r.bakeArgs.indexOf("--out") + 1].replace(/\/snapshot$/, "")));
    assert.ok(r.bakeArgs.includes("it's"), "a quote in a schema name survives");
    assert.deepEqual(r.bakeArgs.slice(r.bakeArgs.indexOf("--exclude-table"), r.bakeArgs.indexOf("--exclude-table") + 2), ["--exclude-table", "public.audit_log"]);
  });

  it("without SNAPSHOT_TAG pushes to the repository (the bake tags with the snapshot id)", () => {
    const r = runScript("found");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.bakeArgs[r.bakeArgs.indexOf("--push") + 1], spec.repositoryUrl);
  });

  it("promotes only the fleet Deployment's containers to the pushed image, pinned by digest", () => {
    const r = runScript("found");
    assert.equal(r.status, 0, r.stderr);
    const ref = `${spec.repositoryUrl}:v7-abc@sha256:feed`;
    assert.deepEqual(r.kubectl.trim().split("\n"), [
      "-n cndb-acme get deployment reader -o name",
      `-n cndb-acme set image deployment/reader reader=${ref} api=${ref}`,
    ]);
    assert.match(r.stdout, /promote: deployment\/reader now runs/);
  });

  it("skips promotion before the Deployment exists (the initial bake)", () => {
    const r = runScript("notfound");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.kubectl.trim().split("\n").length, 1);
    assert.match(r.stdout, /does not exist yet/);
  });

  it("fails on any other kubectl error instead of skipping silently", () => {
    const r = runScript("forbidden");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read deployment\/reader: .*Forbidden/);
  });

  it("fails without the reader password", () => {
    const r = runScript("found", { READER_PASSWORD: "" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /reader password/);
    assert.deepEqual(r.bakeArgs, [""], "cndb bake never ran");
  });

  it("derives the initial tag from the version and the tools image", () => {
    assert.equal(initialSnapshotTag("3", "tools-0123456789abcdef"), "v3-01234567");
    assert.notEqual(initialSnapshotTag("3", "tools-0123456789abcdef"), initialSnapshotTag("4", "tools-0123456789abcdef"));
    assert.notEqual(initialSnapshotTag("3", "tools-0123456789abcdef"), initialSnapshotTag("3", "tools-fedcba9876543210"));
  });
});
