import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { contextFiles, packageRoot, TOOLS_DOCKERFILE, TOOLS_ENTRY } from "../../components/tools-image";
import { type DockerCopy, dockerfileStages, type DockerStage } from "../helpers/dockerfile";

/**
 * The tools image's build without Docker (no engine here): replay the Dockerfile's `build` and `deps`
 * stages as written, each in its own directory standing in for its WORKDIR, on a copy of exactly the
 * files the build context admits; assemble /app the way the final stage copies it; run the entrypoint.
 * What this can't cover: the base images themselves (postgres, node, debian) and the final stage's RUNs.
 */

const ROOT = packageRoot(__dirname);

/** COPY from the context (or a stage dir) into `dir`, with Docker's rules for the cases the Dockerfile uses. */
function replayCopy(c: DockerCopy, srcRoot: string, workdir: string, dir: string, mapAbs: (p: string) => string): void {
  const dest = path.join(dir, path.relative(workdir, path.resolve(workdir, c.dest)));
  let matched = 0;
  for (const src of c.sources) {
    const candidates = src.endsWith("*")
      ? readdirSync(path.join(srcRoot, path.dirname(src))).filter((f) => f.startsWith(path.basename(src, "*"))).map((f) => path.join(path.dirname(src), f))
      : [src];
    for (const s of candidates) {
      const from = path.isAbsolute(s) ? mapAbs(s) : path.join(srcRoot, s);
      if (!existsSync(from)) {
        if (src.endsWith("*")) continue;
        throw new Error(`COPY ${src}: not in the ${c.from ? `stage ${c.from}` : "build context"}`);
      }
      matched++;
      // A directory's contents go into dest; a file goes into dest/ when dest ends with "/", else to dest.
      const to = c.dest.endsWith("/") && !statSync(from).isDirectory() ? path.join(dest, path.basename(s)) : dest;
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(from, to, { recursive: true });
    }
  }
  if (matched === 0) throw new Error(`COPY ${c.sources.join(" ")}: no source files`);
}

function replayStage(stage: DockerStage, ctx: string, dir: string, env: NodeJS.ProcessEnv): void {
  const workdir = stage.workdir ?? "/";
  mkdirSync(dir, { recursive: true });
  for (const [kind, step] of stage.steps) {
    if (kind === "COPY") replayCopy(step, ctx, workdir, dir, () => assert.fail(`stage ${stage.name}: COPY from another stage is not replayed`));
    else execFileSync("/bin/sh", ["-c", step], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  }
}

describe("tools image build, replayed from images/tools.Dockerfile without Docker", function () {
  this.timeout(300_000);
  let tmp: string;
  let app: string;

  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), "cndb-tools-build-"));
    const ctx = path.join(tmp, "context");
    for (const f of contextFiles(ROOT)) cpSync(path.join(ROOT, f), path.join(ctx, f), { recursive: true });

    // The deps stage runs `npm cache clean --force`: give the replay its own copy of the npm cache.
    const realCache = execFileSync("npm", ["config", "get", "cache"], { encoding: "utf8" }).trim();
    const cache = path.join(tmp, "npm-cache");
    if (existsSync(realCache)) cpSync(realCache, cache, { recursive: true });
    const env = { ...process.env, npm_config_cache: cache, npm_config_prefer_offline: "true", npm_config_update_notifier: "false" };

    const stages = dockerfileStages(readFileSync(path.join(ROOT, TOOLS_DOCKERFILE), "utf8"));
    const stageDir = (name: string) => path.join(tmp, "stages", name);
    for (const name of ["build", "deps"]) replayStage(stages.find((s) => s.name === name)!, ctx, stageDir(name), env);

    // The final stage's /app: only what it copies from these stages (node and kubectl come from images).
    const final = stages.at(-1)!;
    app = path.join(tmp, "app");
    for (const c of final.copies.filter((x) => x.from === "build" || x.from === "deps")) {
      const from = stages.find((s) => s.name === c.from)!;
      replayCopy(c, stageDir(c.from!), final.workdir!, app, (p) => path.join(stageDir(c.from!), path.relative(from.workdir!, p)));
    }
  });
  after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

  it("compiles only the run-time, without source maps or declarations", () => {
    assert.deepEqual(readdirSync(path.join(app, "bin")).sort(), ["common", "runtime"]);
    assert.ok(existsSync(path.join(app, TOOLS_ENTRY)));
    const all = (readdirSync(path.join(app, "bin"), { recursive: true }) as string[]).filter((f) => /\.(map|d\.ts)$/.test(f));
    assert.deepEqual(all, []);
  });

  it("ships production dependencies only, without the @pulumi/* deploy-time packages", () => {
    const mods = readdirSync(path.join(app, "node_modules"));
    assert.ok(!mods.includes("@pulumi"), "no @pulumi/*");
    for (const dev of ["typescript", "mocha", "@swc"]) assert.ok(!mods.includes(dev), `no ${dev}`);
    for (const dep of ["pg", "fastify", "commander", "zod"]) assert.ok(mods.includes(dep), `has ${dep}`);
  });

  it("runs the entrypoint: `node /app/bin/runtime/cli.js --help` lists every subcommand", () => {
    const out = execFileSync("node", [TOOLS_ENTRY, "--help"], { cwd: app, encoding: "utf8", env: { PATH: process.env.PATH, NODE_ENV: "production" } });
    for (const cmd of ["bake", "replica", "api", "local"]) assert.match(out, new RegExp(`^\\s+${cmd} `, "m"), `cndb ${cmd}`);
  });
});
