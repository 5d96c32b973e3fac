import assert from "node:assert/strict";
import { ConfigError, parseStackConfig, type StackConfigInput } from "../../components/config";
import { loadStackConfig, stackFiles } from "../helpers/mocks";

const base: StackConfigInput = {
  tenant: "acme",
  network: { vpcId: "vpc-0abc", privateSubnetIds: ["subnet-01", "subnet-02"] },
  cluster: { mode: "new" },
  master: { mode: "create" },
  snapshot: { version: "1" },
};

function problems(raw: unknown): string[] {
  try {
    parseStackConfig(raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail("expected the config to be rejected");
}

describe("stack config (components/config.ts)", () => {
  it("applies the secure defaults", () => {
    const c = parseStackConfig(base);
    assert.equal(c.environment, "dev");
    assert.equal(c.cluster.mode === "new" && c.cluster.endpointPublicAccess, false);
    assert.equal(c.cluster.mode === "new" && c.cluster.nodes.amiFamily, "bottlerocket");
    assert.equal(c.master.mode === "create" && c.master.deletionProtection, true);
    assert.equal(c.master.mode === "create" && c.master.skipFinalSnapshot, false);
    assert.equal(c.master.mode === "create" && c.master.backupRetentionDays, 7);
    assert.equal(c.master.mode === "create" && c.master.engineMajor, 16);
    assert.equal(c.fleet.public, false);
    assert.equal(c.fleet.minReplicas, 2);
    assert.equal(c.snapshot.schedule, "0 */6 * * *");
    assert.equal(c.snapshot.keepImages, 10);
  });

  it("names the key path and the values in cross-field errors", () => {
    assert.deepEqual(problems({ ...base, fleet: { minReplicas: 3, maxReplicas: 1 } }), [
      "fleet.maxReplicas must be >= fleet.minReplicas (got 1 < 3)",
    ]);
    assert.deepEqual(problems({ ...base, cluster: { mode: "new", nodes: { minSize: 2, maxSize: 4, desiredSize: 5 } } }), [
      "cluster.nodes.desiredSize must be between cluster.nodes.minSize and cluster.nodes.maxSize (got 5, allowed 2..4)",
    ]);
    assert.deepEqual(problems({ ...base, master: { mode: "create", allocatedStorageGiB: 100, maxAllocatedStorageGiB: 50 } }), [
      "master.maxAllocatedStorageGiB must be 0 (off) or >= master.allocatedStorageGiB (got 50 < 100)",
    ]);
    assert.deepEqual(problems({ ...base, fleet: { minReplicas: 2, maxUnavailable: 2 } }), [
      "fleet.maxUnavailable must be < fleet.minReplicas so a drain never takes every reader (got 2 >= 2)",
    ]);
  });

  it("says what is allowed for enums, modes, formats and unknown keys", () => {
    assert.deepEqual(problems({ ...base, cluster: { mode: "new", nodes: { amiFamily: "ubuntu" } } }), [
      'cluster.nodes.amiFamily: Invalid option: expected one of "bottlerocket"|"al2023" (got "ubuntu")',
    ]);
    assert.deepEqual(problems({ ...base, cluster: { mode: "eks" } }), ['cluster.mode must be one of "new", "shared" (got "eks")']);
    assert.match(problems({ ...base, snapshot: { version: "1", schedule: "every day" } })[0], /^snapshot\.schedule must be a 5-field cron .*\(got "every day"\)$/);
    assert.deepEqual(problems({ ...base, master: { mode: "create", engineMajor: 12 } }), ["master.engineMajor must be one of 14, 15, 16, 17 (got 12)"]);
    assert.deepEqual(problems({ ...base, fleet: { minReplica: 2 } }), ["fleet: unknown key(s) minReplica"]);
    assert.deepEqual(problems({ ...base, snapshot: undefined }), ["snapshot is required (object)"]);
    assert.match(problems({ ...base, tenant: "Acme" })[0], /^tenant must be lower-case letters.*\(got "Acme"\)$/);
  });

  it("refuses insecure or meaningless combinations", () => {
    assert.deepEqual(problems({ ...base, fleet: { public: true } }), [
      "fleet.publicSourceCidrs must list at least one CIDR when fleet.public is true (an open internet-facing database is never the default)",
    ]);
    assert.deepEqual(problems({ ...base, cluster: { mode: "new", endpointPublicAccess: true } }), [
      "cluster.publicAccessCidrs must list at least one CIDR when cluster.endpointPublicAccess is true",
    ]);
    assert.deepEqual(problems({ ...base, network: undefined }), ['network is required when cluster.mode is "new" (the VPC and private subnets for EKS and RDS)']);
    assert.deepEqual(problems({ ...base, network: { vpcId: "vpc-0abc", privateSubnetIds: ["subnet-01"] } }), [
      'network.privateSubnetIds must list at least 2 private subnets (two availability zones) (got ["subnet-01"])',
    ]);
    assert.deepEqual(
      problems({ ...base, environment: "prod", master: { mode: "create", deletionProtection: false, skipFinalSnapshot: true } }),
      ["master.skipFinalSnapshot must be false in a prod environment while deletion protection is off (the data would be lost on destroy)"],
    );
  });

  it("reports every problem at once", () => {
    const p = problems({ tenant: "acme", cluster: { mode: "new" }, master: { mode: "existing" }, snapshot: { version: "1" } });
    assert.deepEqual(p, [
      "master.host is required (string)",
      "master.databaseName is required (string)",
      "master.secretArn is required (string)",
      "master.engineMajor is required (number)",
    ]);
  });

  it("checks `api` with the read API's own schema, naming the key path under api", () => {
    const bad: [unknown, string][] = [
      [{ maxLimit: 200000 }, "api.maxLimit: Too big: expected number to be <=100000 (got 200000)"],
      [{ maxLimt: 5 }, "api: unknown key(s) maxLimt"],
      [{ defaultLimit: 50, maxLimit: 10 }, "api.defaultLimit must be <= maxLimit (10)"],
      [{ sql: { enabled: "yes" } }, 'api.sql.enabled: Invalid input: expected boolean, received string (got "yes")'],
      [{ queries: { q: { sql: "DELETE FROM t" } } }, "api.queries.q.sql must be one read-only statement starting with SELECT, WITH, VALUES or TABLE"],
      [{ auth: { tokens: [{ name: "a", routes: ["everything"] }] } }, 'api.auth.tokens.0.routes.0 must be * or one of snapshot, tables, rows, queries, sql, metrics, queries/<name> (got "everything")'],
      [{ auth: { tokens: [{ name: "a", sha256: "a".repeat(64), file: "/t", routes: ["rows"] }] } }, "api.auth.tokens.0: give exactly one of sha256 or file"],
      [{ auth: { tokens: [{ name: "a", token: "plain", routes: ["rows"] }] } }, "api.auth.tokens.0.token must not be set: a token never goes into the ConfigMap (use apiTokens)"],
      [{ auth: { tokens: [{ name: "a b", routes: ["rows"] }] } }, 'api.auth.tokens.0.name must be 1-63 characters of letters, digits, "-", "_" and "." (got "a b")'],
      [{ auth: { tokens: [{ name: "a", routes: ["rows"] }, { name: "a", routes: ["sql"] }] } }, 'api.auth.tokens.1.name is used twice ("a")'],
      ["limits", 'api: Invalid input: expected record, received string (got "limits")'],
    ];
    for (const [api, problem] of bad) assert.deepEqual(problems({ ...base, api }), [problem], JSON.stringify(api));
  });

  it("accepts `api` tokens the deploy gives a file (no sha256, no file) and keeps `api` as written", () => {
    const api = { maxLimit: 5000, auth: { tokens: [{ name: "web", routes: ["rows", "queries/top"] }] }, queries: { top: { sql: "SELECT 1" } } };
    assert.deepEqual(parseStackConfig({ ...base, api }).api, api, "no defaults or token files added: api.json is rendered from it");
    assert.deepEqual(parseStackConfig(base).api, {});
  });

  for (const file of stackFiles()) {
    it(`accepts stacks/${file}`, () => {
      const { config } = loadStackConfig(file);
      const raw: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(config)) {
        if (!k.startsWith("container-native-db:")) continue;
        let value: unknown = v;
        try {
          value = JSON.parse(v);
        } catch {
          // a plain string value
        }
        raw[k.slice("container-native-db:".length)] = value;
      }
      const c = parseStackConfig(raw);
      assert.ok(c.tenant);
    });
  }
});
