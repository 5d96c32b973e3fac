import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { RUNTIME_UID } from "../../common/contract";
import {
  CONTEXT,
  contextFiles,
  dockerignoreRules,
  missingContext,
  packageRoot,
  TOOLS_DOCKERFILE,
  TOOLS_DOCKERIGNORE,
  TOOLS_ENTRY,
  toolsImageTag,
} from "../../components/tools-image";
import { dockerfileStages } from "../helpers/dockerfile";

const ROOT = packageRoot(__dirname);

describe("tools image (components/tools-image.ts, images/tools.Dockerfile)", () => {
  let dir: string;
  const put = (f: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cndb-tools-"));
    put("package.json", JSON.stringify({ name: "container-native-db" }));
    put("package-lock.json", "{}");
    put("tsconfig.json", "{}");
    put("tsconfig.image.json", "{}");
    put(TOOLS_DOCKERFILE, "FROM scratch\n");
    put(TOOLS_DOCKERIGNORE, "*\n");
    put("common/contract.ts", "export const A = 1;\n");
    put("runtime/cli.ts", "console.log(1);\n");
    put("runtime/api/README.md", "# docs\n");
    // Outside the context: deploy-time code, build output, installed packages, tests.
    put("components/pipeline.ts", "export {};\n");
    put("bin/runtime/cli.js", "console.log(1)\n");
    put("node_modules/x/index.js", "");
    put("test/unit/x.test.ts", "");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("hashes exactly the files the build context admits: sources of runtime/ and common/, package and tsconfig files", () => {
    assert.deepEqual(contextFiles(dir), ["common/contract.ts", "package-lock.json", "package.json", "runtime/cli.ts", "tsconfig.image.json", "tsconfig.json"]);
  });

  it("tags by content and build args: same input, same tag; any change in the context or the Dockerfile, a new tag", () => {
    const args = { PG_MAJOR: "16" };
    const t = toolsImageTag(dir, args);
    assert.match(t, /^tools-[0-9a-f]{16}$/);
    assert.equal(toolsImageTag(dir, { ...args }), t);
    assert.notEqual(toolsImageTag(dir, { PG_MAJOR: "15" }), t);
    for (const f of ["components/pipeline.ts", "bin/runtime/cli.js", "node_modules/x/index.js", "runtime/api/README.md", "test/unit/x.test.ts"]) put(f, "changed");
    assert.equal(toolsImageTag(dir, args), t, "files outside the context don't change the tag");
    for (const f of ["runtime/cli.ts", "common/contract.ts", "tsconfig.image.json", "package-lock.json", TOOLS_DOCKERFILE]) {
      const before = toolsImageTag(dir, args);
      put(f, `changed ${f}`);
      assert.notEqual(toolsImageTag(dir, args), before, `${f} is part of the tag`);
    }
    put("runtime/api/new.ts", "export {};\n");
    assert.ok(contextFiles(dir).includes("runtime/api/new.ts"), "a new run-time file enters the context");
  });

  it("names the sources a context is missing (an installed copy without them, a wrong contextDir)", () => {
    assert.deepEqual(missingContext(dir), []);
    rmSync(path.join(dir, "runtime"), { recursive: true });
    rmSync(path.join(dir, "tsconfig.image.json"));
    assert.deepEqual(missingContext(dir), ["tsconfig.image.json", "runtime/cli.ts"]);
    assert.deepEqual(missingContext(ROOT), [], "this checkout is a complete context");
  });

  it("finds the package root upwards from a nested directory", () => {
    assert.equal(packageRoot(path.join(dir, "runtime/api")), dir);
    assert.equal(ROOT, path.resolve(__dirname, "../.."));
    assert.throws(() => packageRoot(tmpdir()), /cannot find the container-native-db package root/);
  });

  it("the ignore file admits exactly CONTEXT (what the tag hashes)", () => {
    const active = readFileSync(path.join(ROOT, TOOLS_DOCKERIGNORE), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    assert.deepEqual(active, dockerignoreRules());
    assert.equal(active[0], "*", "the context admits nothing by default");
    assert.ok(CONTEXT.exclude.test("README.md"));
  });

  it("the Dockerfile takes the build args the pipeline passes and runs cndb as uid 999", () => {
    const text = readFileSync(path.join(ROOT, TOOLS_DOCKERFILE), "utf8");
    for (const arg of ["PG_MAJOR", "BASE_IMAGE", "KUBECTL_VERSION"]) assert.match(text, new RegExp(`^ARG ${arg}(=|$)`, "m"), `ARG ${arg}`);
    assert.match(text, new RegExp(`^USER ${RUNTIME_UID}:${RUNTIME_UID}$`, "m"));
    assert.match(text, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/bin\/runtime\/cli\.js"\]$/m);
    assert.equal(TOOLS_ENTRY, "bin/runtime/cli.js");
    assert.match(text, /sha256sum -c/, "kubectl is checked against its published digest");
    assert.match(text, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m, "Node pinned by major");
  });

  it("the Dockerfile compiles the run-time itself: every COPY source is in the context, and tsc's output is the entrypoint", () => {
    const stages = dockerfileStages(readFileSync(path.join(ROOT, TOOLS_DOCKERFILE), "utf8"));
    const admitted = contextFiles(ROOT);
    const inContext = (src: string) => {
      const s = src.replace(/\/$/, "");
      return s.endsWith("*") ? true : admitted.includes(s) || admitted.some((f) => f.startsWith(`${s}/`));
    };
    for (const stage of stages) {
      for (const c of stage.copies) {
        if (c.from !== undefined) {
          assert.ok(stages.some((s) => s.name === c.from) || c.from.includes(":"), `COPY --from=${c.from}: no such stage`);
          continue;
        }
        for (const src of c.sources) assert.ok(inContext(src), `stage ${stage.name ?? "(final)"}: COPY ${src} is not in the build context`);
      }
    }
    // Required sources are plain names (globbed ones like package-lock.json* may be absent).
    for (const f of ["package.json", "package-lock.json"]) assert.ok(admitted.includes(f));
    const build = stages.find((s) => s.name === "build")!;
    assert.ok(build.runs.some((r) => /\bnpm ci\b/.test(r)), "the build stage installs from the lock");
    assert.ok(build.runs.some((r) => /tsc -p tsconfig\.image\.json/.test(r)), "the build stage compiles with tsconfig.image.json");
    const final = stages.at(-1)!;
    assert.ok(final.copies.some((c) => c.from === "build" && c.sources[0] === "/app/bin" && c.dest === "./bin"), "the final stage takes bin/ from the build stage");
    assert.ok(!final.copies.some((c) => c.from === undefined), "the final stage copies nothing straight from the context");

    // tsconfig.image.json: only the run-time, compiled to bin/ with the layout the entrypoint expects.
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, "tsconfig.image.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")) as {
      compilerOptions: { rootDir: string; outDir: string };
      include: string[];
    };
    assert.deepEqual([...tsconfig.include].sort(), CONTEXT.dirs.map((d) => `${d}/**/*.ts`).sort());
    assert.equal(path.join(tsconfig.compilerOptions.outDir, path.relative(tsconfig.compilerOptions.rootDir, "runtime/cli.ts")).replace(/\.ts$/, ".js"), TOOLS_ENTRY);
    assert.ok(existsSync(path.join(ROOT, "runtime/cli.ts")));
  });
});
