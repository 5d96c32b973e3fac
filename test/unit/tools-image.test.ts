import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { RUNTIME_UID } from "../../common/contract";
import { contextFiles, packageRoot, TOOLS_DOCKERFILE, toolsImageTag } from "../../components/tools-image";

describe("tools image (components/tools-image.ts, images/tools.Dockerfile)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cndb-tools-"));
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "container-native-db" }));
    writeFileSync(path.join(dir, "package-lock.json"), "{}");
    mkdirSync(path.join(dir, "images"));
    writeFileSync(path.join(dir, TOOLS_DOCKERFILE), "FROM scratch\n");
    mkdirSync(path.join(dir, "bin/runtime"), { recursive: true });
    writeFileSync(path.join(dir, "bin/runtime/cli.js"), "console.log(1)\n");
    writeFileSync(path.join(dir, "bin/runtime/cli.js.map"), "{}");
    mkdirSync(path.join(dir, "node_modules/x"), { recursive: true });
    writeFileSync(path.join(dir, "node_modules/x/index.js"), "");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("hashes exactly the files the build context admits", () => {
    assert.deepEqual(contextFiles(dir), ["bin/runtime/cli.js", TOOLS_DOCKERFILE, "package-lock.json", "package.json"]);
  });

  it("tags by content and build args: same input, same tag; any change, a new tag", () => {
    const args = { PG_MAJOR: "16" };
    const t = toolsImageTag(dir, args);
    assert.match(t, /^tools-[0-9a-f]{16}$/);
    assert.equal(toolsImageTag(dir, { ...args }), t);
    assert.notEqual(toolsImageTag(dir, { PG_MAJOR: "15" }), t);
    writeFileSync(path.join(dir, "bin/runtime/cli.js.map"), "{\"changed\":1}");
    writeFileSync(path.join(dir, "node_modules/x/index.js"), "changed");
    assert.equal(toolsImageTag(dir, args), t, "files outside the context don't change the tag");
    writeFileSync(path.join(dir, "bin/runtime/cli.js"), "console.log(2)\n");
    assert.notEqual(toolsImageTag(dir, args), t);
  });

  it("finds the package root upwards from a nested directory", () => {
    assert.equal(packageRoot(path.join(dir, "bin/runtime")), dir);
    assert.equal(packageRoot(__dirname), path.resolve(__dirname, "../.."));
    assert.throws(() => packageRoot(tmpdir()), /cannot find the container-native-db package root/);
  });

  it("the Dockerfile takes the build args the pipeline passes and runs cndb as uid 999", () => {
    const text = readFileSync(path.join(packageRoot(__dirname), TOOLS_DOCKERFILE), "utf8");
    for (const arg of ["PG_MAJOR", "BASE_IMAGE", "KUBECTL_VERSION"]) assert.match(text, new RegExp(`^ARG ${arg}(=|$)`, "m"), `ARG ${arg}`);
    assert.match(text, new RegExp(`^USER ${RUNTIME_UID}:${RUNTIME_UID}$`, "m"));
    assert.match(text, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/bin\/runtime\/cli\.js"\]$/m);
    assert.match(text, /sha256sum -c/, "kubectl is checked against its published digest");
    const ignore = readFileSync(path.join(packageRoot(__dirname), `${TOOLS_DOCKERFILE}.dockerignore`), "utf8");
    assert.match(ignore, /^\*$/m, "the context admits nothing by default");
  });
});
