import assert from "node:assert/strict";
import type { Command } from "commander";
import { bakeArgs, type BakeSpec } from "../../components/bake-script";
import { apiArgs, readerArgs } from "../../components/fleet";
import { buildProgram } from "../../runtime/cli";

/**
 * The deploy renders `cndb` command lines (bake Job, reader and API containers); this checks every
 * option it passes against the options the run-time's `cndb` actually registers.
 */
function check(cmdName: string, argv: string[]): void {
  const cmd = buildProgram().commands.find((c: Command) => c.name() === cmdName);
  assert.ok(cmd, `cndb has no ${cmdName} command`);
  const known = new Map(cmd.options.map((o) => [o.long, o] as const));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const opt = known.get(a);
    assert.ok(opt, `cndb ${cmdName} has no option ${a} (it has ${[...known.keys()].join(" ")})`);
    if (opt.required || opt.optional) i++; // skip its value
  }
}

describe("the deploy's command lines match the cndb run-time", () => {
  it("bake Job: cndb bake", () => {
    const spec: BakeSpec = {
      sourceUrl: "postgres://h:5432/d?sslmode=require", sourceSecretArn: "arn", baseImage: "b", repositoryUrl: "r",
      namespace: "n", deployment: "reader", containers: ["reader"], jobs: 2, schemas: ["s"], includeTables: ["t"], excludeTables: ["x"],
    };
    const argv = bakeArgs(spec);
    assert.equal(argv[0], "bake");
    check("bake", [...argv.slice(1), "--push", "r:tag"]);
  });

  it("reader container: cndb replica", () => {
    const argv = readerArgs("files");
    assert.equal(argv[0], "replica");
    check("replica", argv.slice(1));
  });

  it("API sidecar: cndb api", () => {
    const argv = apiArgs("app");
    assert.equal(argv[0], "api");
    check("api", argv.slice(1));
  });
});
