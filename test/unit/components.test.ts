import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import {
  ArgsError,
  ContainerNativeDatabase,
  type ContainerNativeDatabaseArgs,
  MasterDatabase,
  ReadFleet,
  renderApiConfig,
  SnapshotPipeline,
  type SnapshotPipelineArgs,
  tokenSecretData,
  validateFleetArgs,
  validateMasterArgs,
  validatePipelineArgs,
} from "../../components";
import { runWithMocks, validateKubernetesObject, valueOf } from "../helpers/mocks";

const OIDC = {
  oidcProviderArn: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC",
  oidcProviderUrl: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC",
};
const EXISTING_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:legacy-master-AbCdEf";

function dbArgs(over: Partial<ContainerNativeDatabaseArgs> = {}): ContainerNativeDatabaseArgs {
  return {
    tenant: "beta",
    cluster: { mode: "provider", ...OIDC, nodeSecurityGroupIds: ["sg-0nodes"] },
    master: {
      existing: { host: "legacy.internal", port: 5433, databaseName: "shop", secretArn: EXISTING_SECRET },
      engineMajorVersion: 15,
    },
    snapshot: { snapshotVersion: "1" },
    ...over,
  };
}

function argsError(fn: () => unknown, field: string, detail: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ArgsError, `expected ArgsError, got ${e}`);
    assert.equal(e.field, field);
    assert.match(e.message, detail);
    return true;
  });
}

describe("components under mocks", function () {
  this.timeout(30_000);

  it("wraps an existing master and takes the kubernetes provider from `providers`", async () => {
    const { rec, result: db } = await runWithMocks(() => {
      const provider = new k8s.Provider("shared", { kubeconfig: "{}" });
      return new ContainerNativeDatabase("beta", dbArgs(), { providers: { kubernetes: provider } });
    });
    // Nothing of RDS is created for an existing master.
    for (const t of ["aws:rds/instance:Instance", "aws:rds/subnetGroup:SubnetGroup", "aws:ec2/securityGroup:SecurityGroup"]) assert.deepEqual(rec.ofType(t), []);
    assert.equal(await valueOf(db.masterEndpoint), "legacy.internal:5433");
    const provider = rec.one("pulumi:providers:kubernetes", "shared");
    for (const r of rec.kubernetes()) assert.ok(r.provider.startsWith(`${provider.urn}::`), `${r.type} ${r.name}`);
    const spec = rec.ofType("kubernetes:core/v1:ConfigMap").find((c) => c.inputs.metadata.name === "cndb-bake-spec")!;
    assert.equal(JSON.parse(spec.inputs.data["spec.json"]).sourceUrl, "postgres://legacy.internal:5433/shop?sslmode=require");
    assert.equal(rec.one("docker-build:index:Image").inputs.buildArgs.PG_MAJOR, "15");
    const policy = JSON.parse(rec.one("aws:iam/rolePolicy:RolePolicy").inputs.policy);
    assert.equal(policy.Statement.find((s: { Sid: string }) => s.Sid === "ReadMasterSecret").Resource, EXISTING_SECRET);
  });

  it("grants kms:Decrypt on the CMK of an existing master's secret, via Secrets Manager only", async () => {
    const kms = "arn:aws:kms:eu-west-1:123456789012:key/1111-2222";
    const { rec } = await runWithMocks(() => {
      const provider = new k8s.Provider("shared", { kubeconfig: "{}" });
      const a = dbArgs();
      return new ContainerNativeDatabase("beta", { ...a, master: { ...a.master, existing: { ...a.master!.existing!, kmsKeyArn: kms } } }, { providers: { kubernetes: provider } });
    });
    const policy = JSON.parse(rec.one("aws:iam/rolePolicy:RolePolicy").inputs.policy);
    const s = policy.Statement.find((x: { Sid: string }) => x.Sid === "DecryptMasterSecret");
    assert.deepEqual(s, {
      Sid: "DecryptMasterSecret",
      Effect: "Allow",
      Action: "kms:Decrypt",
      Resource: kms,
      Condition: { StringEquals: { "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com" } },
    });
  });

  it("turns the refresh CronJob off with schedule \"off\"", async () => {
    const { rec } = await runWithMocks(() => {
      const provider = new k8s.Provider("shared", { kubeconfig: "{}" });
      return new ContainerNativeDatabase("beta", dbArgs({ snapshot: { snapshotVersion: "1", schedule: "off" } }), { providers: { kubernetes: provider } });
    });
    assert.deepEqual(rec.ofType("kubernetes:batch/v1:CronJob"), []);
    assert.equal(rec.ofType("kubernetes:batch/v1:Job").length, 1);
  });

  it("a public fleet gets an internet-facing NLB limited to the given CIDRs, also in the NetworkPolicy", async () => {
    const { rec, result: fleet } = await runWithMocks(() =>
      new ReadFleet("pub", { tenant: "pub", image: "repo/snap:v1", public: true, publicSourceCidrs: ["203.0.113.0/24"] }),
    );
    const svc = rec.one("kubernetes:core/v1:Service");
    assert.equal(svc.inputs.spec.type, "LoadBalancer");
    assert.deepEqual(svc.inputs.spec.loadBalancerSourceRanges, ["203.0.113.0/24"]);
    assert.equal(svc.inputs.metadata.annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"], "internet-facing");
    const np = rec.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs.spec;
    assert.deepEqual(np.ingress[0].from.at(-1), { ipBlock: { cidr: "203.0.113.0/24" } });
    assert.match(await valueOf(fleet.apiUrl), /^http:\/\/pub-service-[0-9a-f]{8}\.elb\.eu-west-1\.amazonaws\.com:8080$/);
    for (const r of rec.kubernetes()) validateKubernetesObject(r);
  });

  it("the standalone pipeline runs its bake in the given namespace and exports the initial image", async () => {
    const args: SnapshotPipelineArgs = {
      tenant: "solo",
      namespace: "team-ns",
      source: { host: "h", port: 5432, databaseName: "d", secretArn: EXISTING_SECRET },
      postgresMajor: 16,
      ...OIDC,
      snapshotVersion: "9",
    };
    const { rec, result: p } = await runWithMocks(() => new SnapshotPipeline("solo", args));
    const job = rec.one("kubernetes:batch/v1:Job");
    assert.equal(job.inputs.metadata.namespace, "team-ns");
    assert.match(await valueOf(p.initialImage), /solo-snapshots:v9-[0-9a-f]{8}$/);
    const trust = JSON.parse(rec.one("aws:iam/role:Role").inputs.assumeRolePolicy);
    assert.equal(trust.Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"], "system:serviceaccount:team-ns:cndb-bake");
  });

  it("creates nothing when its args are invalid", async () => {
    const { rec } = await runWithMocks(() => {
      const provider = new k8s.Provider("shared", { kubeconfig: "{}" });
      assert.throws(
        () => new ContainerNativeDatabase("bad", dbArgs({ fleet: { minReplicas: 4, maxReplicas: 2 } }), { providers: { kubernetes: provider } }),
        /ReadFleet: maxReplicas must be >= minReplicas \(got 2 < 4\)/,
      );
      assert.throws(() => new MasterDatabase("bad", { engineMajorVersion: 16 }), /MasterDatabase: vpcId is required when creating a master/);
    });
    // Only the components themselves were registered (their constructors throw before any child).
    assert.deepEqual(
      rec.resources.map((r) => r.type).sort(),
      ["container-native-db:index:ContainerNativeDatabase", "container-native-db:index:MasterDatabase", "pulumi:providers:kubernetes"],
    );
  });
});

describe("component argument validation", () => {
  it("ContainerNativeDatabase: cluster access and network", async () => {
    await runWithMocks(() => {
      argsError(() => new ContainerNativeDatabase("a", dbArgs()), "cluster.mode", /needs a kubernetes provider in the providers option/);
      argsError(
        () => new ContainerNativeDatabase("b", dbArgs({ cluster: { mode: "kubeconfig", ...OIDC } })),
        "cluster.kubeconfig",
        /is required when cluster.mode is "kubeconfig"/,
      );
      argsError(
        () => new ContainerNativeDatabase("c", dbArgs({ cluster: { mode: "kubeconfig", kubeconfig: "{}", ...OIDC }, master: {} })),
        "network",
        /is required to create a master or a cluster/,
      );
      argsError(
        () => new ContainerNativeDatabase("d", dbArgs({ cluster: { mode: "new", nodes: { amiFamily: "ubuntu" as never } }, network: { vpcId: "v", privateSubnetIds: [] } })),
        "cluster.nodes.amiFamily",
        /must be "bottlerocket" or "al2023" \(got "ubuntu"\)/,
      );
      argsError(
        () => new ContainerNativeDatabase("e", dbArgs({ tenant: "Bad_Name" }), {}),
        "tenant",
        /lower-case letters, digits and '-'/,
      );
    });
  });

  it("MasterDatabase", () => {
    argsError(() => validateMasterArgs({ engineMajorVersion: 12 }), "engineMajorVersion", /must be one of 14, 15, 16, 17 \(got 12\)/);
    argsError(() => validateMasterArgs({ vpcId: "v", subnetIds: [] }), "allowedSecurityGroupIds", /or allowedCidrs must admit at least one source/);
    argsError(() => validateMasterArgs({ vpcId: "v", subnetIds: [], allowedCidrs: ["0.0.0.0/0"] }), "allowedCidrs", /must not admit the whole internet/);
    argsError(() => validateMasterArgs({ vpcId: "v", subnetIds: [], allowedCidrs: ["10.0.0.0/33"] }), "allowedCidrs", /IPv4 CIDRs/);
    argsError(() => validateMasterArgs({ vpcId: "v", subnetIds: [], allowedCidrs: ["10.0.0.0/8"], backupRetentionDays: 0 }), "backupRetentionDays", /from 1 to 35 \(got 0\)/);
    argsError(
      () => validateMasterArgs({ existing: { host: "h", databaseName: "d", secretArn: "s" }, multiAz: true }),
      "multiAz",
      /must not be set together with existing/,
    );
  });

  it("SnapshotPipeline", () => {
    const ok = { postgresMajor: 16, snapshotVersion: "1" };
    argsError(() => validatePipelineArgs({ ...ok, snapshotVersion: "V1!" }), "snapshotVersion", /a-z, 0-9/);
    argsError(() => validatePipelineArgs({ ...ok, schedule: "hourly" }), "schedule", /5-field cron/);
    argsError(() => validatePipelineArgs({ ...ok, keepImages: 1 }), "keepImages", /from 2 to 1000/);
    argsError(() => validatePipelineArgs({ ...ok, workVolumeSize: "lots" }), "workVolumeSize", /Kubernetes quantity/);
    argsError(() => validatePipelineArgs({ ...ok, image: { platform: "linux/s390x" as never } }), "image.platform", /linux\/amd64/);
  });

  it("SnapshotPipeline: a build context without the run-time sources fails before any child", async () => {
    const empty = mkdtempSync(path.join(tmpdir(), "cndb-ctx-"));
    try {
      const { rec } = await runWithMocks(() =>
        argsError(
          () =>
            new SnapshotPipeline("p", {
              tenant: "t",
              namespace: "ns",
              source: { host: "h", port: 5432, databaseName: "d", secretArn: EXISTING_SECRET },
              postgresMajor: 16,
              ...OIDC,
              snapshotVersion: "1",
              image: { contextDir: empty },
            }),
          "image.contextDir",
          /has no package\.json, tsconfig\.json, tsconfig\.image\.json, common, runtime\/cli\.ts/,
        ),
      );
      assert.deepEqual(rec.resources.map((r) => r.type), ["container-native-db:index:SnapshotPipeline"]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("ReadFleet and its API config", () => {
    argsError(() => validateFleetArgs({ tenant: "t", public: true }), "publicSourceCidrs", /at least one CIDR when public/);
    argsError(() => validateFleetArgs({ tenant: "t", warmup: "lazy" as never }), "warmup", /"files", "full" or "none"/);
    argsError(() => validateFleetArgs({ tenant: "t", apiConfig: { auth: { tokens: [{ name: "x", routes: ["*"] }] } } }), "apiTokens", /must hold the token\(s\) x/);
    argsError(() => validateFleetArgs({ tenant: "t", apiTokens: { x: "y" } }), "apiTokens", /no apiConfig.auth.tokens entry reads a token file/);
    argsError(
      () => renderApiConfig({ auth: { tokens: [{ name: "x", token: "plain", routes: ["*"] }] } }),
      "apiConfig.auth.tokens.0.token",
      /never goes into the ConfigMap/,
    );
    // The read API's own schema, on the config as deployed (filled-in token files validate).
    argsError(() => validateFleetArgs({ tenant: "t", apiConfig: { maxLimit: 10 } }), "apiConfig.defaultLimit", /must be <= maxLimit \(10\)/);
    argsError(() => validateFleetArgs({ tenant: "t", apiConfig: { poolSize: 0 } }), "apiConfig.poolSize", /is invalid: Too small: .*>0 \(got 0\)/);
    argsError(() => validateFleetArgs({ tenant: "t", apiConfig: { sql: { enable: true } } }), "apiConfig.sql", /has unknown key\(s\) enable/);
    argsError(
      () => renderApiConfig({ auth: { tokens: [{ name: "x", routes: ["queries/nope"] }] } }),
      "apiConfig.auth.tokens.0.routes.0",
      /is invalid: no named query nope in queries/,
    );
    const r = renderApiConfig({ defaultLimit: 5, maxLimit: 10, auth: { tokens: [{ name: "a", routes: ["*"] }, { name: "b", sha256: "0".repeat(64), routes: ["rows"] }] } });
    assert.deepEqual(JSON.parse(r.json).auth.tokens, [
      { name: "a", routes: ["*"], file: "/etc/cndb/secrets/a" },
      { name: "b", sha256: "0".repeat(64), routes: ["rows"] },
    ]);
    assert.deepEqual(r.secretTokenNames, ["a"]);
    assert.deepEqual(tokenSecretData(["a"], { a: "t" }), { a: "t" });
    argsError(() => tokenSecretData(["a"], {}), "apiTokens", /has no token for a/);
    argsError(() => tokenSecretData(["a"], { a: "t", z: "u" }), "apiTokens", /token\(s\) z that no/);
  });
});
