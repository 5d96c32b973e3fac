import assert from "node:assert/strict";
import { API_PORT, IMAGE_SNAPSHOT_DIR, READER_PORT, READY_FILE, RUNTIME_UID, SOCKET_DIR } from "../../common/contract";
import { parseStackConfig, type StackConfig } from "../../components/config";
import { FLEET_IGNORE_CHANGES } from "../../components/fleet";
import { type PolicyDocument } from "../../components/iam";
import {
  loadStackConfig,
  type Recorded,
  Recorder,
  runWithMocks,
  stackFiles,
  stackName,
  validateKubernetesObject,
  valueOf,
} from "../helpers/mocks";

/** What the platform team's cluster stack exports (tenant-acme reads it through a StackReference). */
export const SHARED_CLUSTER = {
  "platform-org/eks-platform/prod": {
    kubeconfig: '{"apiVersion":"v1","kind":"Config"}',
    oidcProviderArn: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789",
    oidcProviderUrl: "https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789",
    nodeSecurityGroupId: "sg-0platformnodes",
    vpcId: "vpc-0platform",
    privateSubnetIds: ["subnet-0plat1", "subnet-0plat2", "subnet-0plat3"],
  },
};

/** Secrets the stacks set with `pulumi config set --secret` (not in the files). */
const STACK_SECRETS: Record<string, Record<string, string>> = {
  prod: { "container-native-db:apiTokens": JSON.stringify({ storefront: "tok-storefront-0123456789", search: "tok-search-0123456789" }) },
};

const NS = "container-native-db:";

/** The stack file's config the way index.ts sees it, validated: the source of every expectation below. */
function parsedConfig(config: Record<string, string>): StackConfig {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!k.startsWith(NS) || k === `${NS}apiTokens`) continue;
    try {
      raw[k.slice(NS.length)] = JSON.parse(v);
    } catch {
      raw[k.slice(NS.length)] = v;
    }
  }
  return parseStackConfig(raw);
}

export async function runProgram(config: Record<string, string>, secretKeys: string[], stack = "test") {
  return runWithMocks(
    () => {
      delete require.cache[require.resolve("../../index")];
      return require("../../index") as Record<string, unknown>;
    },
    { config, secretKeys, stack, stackOutputs: SHARED_CLUSTER, region: config["aws:region"] },
  );
}

/** The resource set a stack must produce, derived from its config. */
function expectedCounts(c: StackConfig, withTokens: boolean): Record<string, number> {
  const e: Record<string, number> = {
    "container-native-db:index:ContainerNativeDatabase": 1,
    "container-native-db:index:MasterDatabase": 1,
    "container-native-db:index:SnapshotPipeline": 1,
    "container-native-db:index:ReadFleet": 1,
    "pulumi:providers:kubernetes": 1,
    "aws:ecr/repository:Repository": 2,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 2,
    "docker-build:index:Image": 1,
    "aws:iam/role:Role": 1,
    "aws:iam/rolePolicy:RolePolicy": 1,
    "random:index/randomPassword:RandomPassword": 1,
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 2,
    "kubernetes:core/v1:ConfigMap": 2,
    "kubernetes:core/v1:Secret": withTokens ? 2 : 1,
    "kubernetes:rbac.authorization.k8s.io/v1:Role": 1,
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": 1,
    "kubernetes:batch/v1:Job": 1,
    "kubernetes:apps/v1:Deployment": 1,
    "kubernetes:core/v1:Service": 1,
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1,
    "kubernetes:policy/v1:PodDisruptionBudget": 1,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": 1,
  };
  if (c.snapshot.schedule !== "off") e["kubernetes:batch/v1:CronJob"] = 1;
  if (c.master.mode === "create") {
    Object.assign(e, {
      "aws:rds/subnetGroup:SubnetGroup": 1,
      "aws:ec2/securityGroup:SecurityGroup": 1,
      "aws:rds/parameterGroup:ParameterGroup": 1,
      "aws:rds/instance:Instance": 1,
      "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 1 + c.master.allowedCidrs.length,
    });
  }
  if (c.cluster.mode === "new") {
    Object.assign(e, {
      "eks:index:Cluster": 1,
      "eks:index:ManagedNodeGroup": 1,
      "aws:ec2/launchTemplate:LaunchTemplate": 1,
      "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 3,
    });
    e["aws:iam/role:Role"] += 1;
  } else {
    e["pulumi:pulumi:StackReference"] = 1;
  }
  return e;
}

type Pod = { securityContext: any; containers: any[]; automountServiceAccountToken?: boolean; volumes?: any[]; serviceAccountName?: string };

function podsOf(rec: Recorder): { owner: Recorded; pod: Pod }[] {
  const pods: { owner: Recorded; pod: Pod }[] = [];
  for (const d of rec.ofType("kubernetes:apps/v1:Deployment")) pods.push({ owner: d, pod: d.inputs.spec.template.spec });
  for (const j of rec.ofType("kubernetes:batch/v1:Job")) pods.push({ owner: j, pod: j.inputs.spec.template.spec });
  for (const j of rec.ofType("kubernetes:batch/v1:CronJob")) pods.push({ owner: j, pod: j.inputs.spec.jobTemplate.spec.template.spec });
  return pods;
}

function statements(doc: string): PolicyDocument["Statement"] {
  return (JSON.parse(doc) as PolicyDocument).Statement;
}

describe("stacks/ through index.ts under mocks", function () {
  this.timeout(60_000);

  for (const file of stackFiles()) {
    describe(file, () => {
      const stack = stackName(file);
      // Read while the tests are defined: which checks apply depends on the stack's config.
      const { config, secretKeys } = loadStackConfig(file, STACK_SECRETS[stack] ?? {});
      const cfg = parsedConfig(config);
      let rec: Recorder;
      let exports: Record<string, unknown>;

      before(async () => {
        const r = await runProgram(config, secretKeys, stack);
        rec = r.rec;
        exports = r.result;
      });

      const tenantNs = () => `cndb-${cfg.tenant}`;
      const withTokens = () => STACK_SECRETS[stack] !== undefined;

      it("produces exactly the expected set of resources", () => {
        assert.deepEqual(rec.counts(), expectedCounts(cfg, withTokens()));
      });

      it("nests every resource under the ContainerNativeDatabase component", () => {
        const root = rec.one("container-native-db:index:ContainerNativeDatabase");
        assert.equal(root.parent, "", "the component is top-level in the program");
        for (const r of rec.resources) {
          if (r === root || r.type === "pulumi:pulumi:StackReference") continue;
          let p: Recorded | undefined = r;
          while (p && p !== root) p = rec.byUrn(p.parent);
          assert.equal(p, root, `${r.type} ${r.name} is not under the component`);
        }
        const parentType = (r: Recorded) => rec.byUrn(r.parent)?.type;
        assert.equal(parentType(rec.one("kubernetes:apps/v1:Deployment")), "container-native-db:index:ReadFleet");
        assert.equal(parentType(rec.one("kubernetes:batch/v1:Job")), "container-native-db:index:SnapshotPipeline");
        if (cfg.master.mode === "create") assert.equal(parentType(rec.one("aws:rds/instance:Instance")), "container-native-db:index:MasterDatabase");
      });

      it("puts every Kubernetes object through the stack's kubernetes provider, in the tenant namespace", () => {
        const provider = rec.one("pulumi:providers:kubernetes");
        for (const r of rec.kubernetes()) {
          assert.ok(r.provider.startsWith(`${provider.urn}::`), `${r.type} ${r.name} uses provider ${r.provider || "(default)"}`);
          if (r.type !== "kubernetes:core/v1:Namespace") assert.equal(r.inputs.metadata.namespace, tenantNs(), `${r.type} ${r.name}`);
        }
        assert.ok(provider.secretPaths.includes("kubeconfig"), "the kubeconfig is a secret");
      });

      it("renders Kubernetes objects that validate against the Kubernetes schema", () => {
        const objects = rec.kubernetes();
        assert.ok(objects.length >= 15);
        for (const r of objects) assert.doesNotThrow(() => validateKubernetesObject(r), `${r.type} ${r.name}`);
      });

      it("runs every pod non-root, without privilege escalation or capabilities, under RuntimeDefault seccomp", () => {
        const pods = podsOf(rec);
        assert.equal(pods.length, cfg.snapshot.schedule === "off" ? 2 : 3);
        for (const { owner, pod } of pods) {
          const where = `${owner.type} ${owner.name}`;
          assert.deepEqual(
            { nonRoot: pod.securityContext.runAsNonRoot, uid: pod.securityContext.runAsUser, seccomp: pod.securityContext.seccompProfile.type },
            { nonRoot: true, uid: RUNTIME_UID, seccomp: "RuntimeDefault" },
            where,
          );
          for (const c of pod.containers) {
            const sc = c.securityContext;
            assert.equal(sc.allowPrivilegeEscalation, false, `${where} ${c.name}`);
            assert.deepEqual(sc.capabilities.drop, ["ALL"], `${where} ${c.name}`);
            assert.equal(sc.runAsNonRoot, true, `${where} ${c.name}`);
            assert.equal(sc.seccompProfile.type, "RuntimeDefault", `${where} ${c.name}`);
            // Only the reader writes to its root filesystem (PGDATA lives in the image).
            assert.equal(sc.readOnlyRootFilesystem, c.name !== "reader", `${where} ${c.name} readOnlyRootFilesystem`);
            assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${where} ${c.name} resources`);
            for (const e of c.env ?? []) {
              if (/PASSWORD|TOKEN|SECRET/i.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef && e.value === undefined, `${where} ${c.name} env ${e.name} must come from a Secret`);
            }
          }
        }
        const fleet = rec.one("kubernetes:apps/v1:Deployment").inputs.spec.template.spec;
        assert.equal(fleet.automountServiceAccountToken, false);
        const ns = rec.one("kubernetes:core/v1:Namespace").inputs.metadata.labels;
        assert.equal(ns["pod-security.kubernetes.io/enforce"], "restricted");
      });

      it("keeps secrets out of ConfigMaps and marks Secret data secret", async () => {
        const password = await valueOf(exports.readerPassword as never);
        assert.match(String(password), /^pw[0-9a-f]{30}$/);
        const tokens = Object.values(JSON.parse(STACK_SECRETS[stack]?.["container-native-db:apiTokens"] ?? "{}")) as string[];
        for (const cm of rec.ofType("kubernetes:core/v1:ConfigMap")) {
          const text = JSON.stringify(cm.inputs.data);
          assert.ok(!text.includes(String(password)), `${cm.name} holds the reader password`);
          for (const t of tokens) assert.ok(!text.includes(t), `${cm.name} holds an API token`);
          assert.doesNotMatch(text, /:\/\/[^/@"]*:[^/@"]*@/, `${cm.name} holds a URL with credentials`);
        }
        for (const s of rec.ofType("kubernetes:core/v1:Secret")) assert.ok(s.secretPaths.includes("stringData"), `${s.name} stringData is not secret`);
        assert.equal(rec.one("random:index/randomPassword:RandomPassword").inputs.special, false);
      });

      const m = cfg.master;
      if (m.mode === "create")
        it("creates the master private, encrypted, TLS-only, backed up, with an RDS-managed password", () => {
          const db = rec.one("aws:rds/instance:Instance").inputs;
          assert.equal(db.engine, "postgres");
          assert.equal(db.engineVersion, String(m.engineMajor));
          assert.equal(db.publiclyAccessible, false);
          assert.equal(db.storageEncrypted, true);
          assert.equal(db.manageMasterUserPassword, true);
          assert.equal(db.password, undefined);
          assert.equal(db.backupRetentionPeriod, m.backupRetentionDays);
          assert.equal(db.deletionProtection, m.deletionProtection);
          assert.equal(db.multiAz, m.multiAz);
          assert.equal(db.performanceInsightsEnabled, m.performanceInsights);
          assert.equal(db.skipFinalSnapshot, m.skipFinalSnapshot);
          if (!m.skipFinalSnapshot) assert.ok(db.finalSnapshotIdentifier);
          assert.equal(db.kmsKeyId, m.kmsKeyArn);
          const params = rec.one("aws:rds/parameterGroup:ParameterGroup").inputs;
          assert.equal(params.family, `postgres${m.engineMajor}`);
          assert.ok(params.parameters.some((p: { name: string; value: string }) => p.name === "rds.force_ssl" && p.value === "1"));
          const sg = rec.one("aws:ec2/securityGroup:SecurityGroup");
          assert.equal(sg.inputs.ingress, undefined, "no inline rules");
          for (const rule of rec.ofType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")) {
            assert.deepEqual([rule.inputs.fromPort, rule.inputs.toPort, rule.inputs.ipProtocol], [5432, 5432, "tcp"]);
            assert.notEqual(rule.inputs.cidrIpv4, "0.0.0.0/0");
          }
          const fromSg = rec.ofType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter((r) => r.inputs.referencedSecurityGroupId);
          assert.equal(fromSg.length, 1);
          assert.equal(fromSg[0].inputs.referencedSecurityGroupId, cfg.cluster.mode === "shared" ? SHARED_CLUSTER["platform-org/eks-platform/prod"].nodeSecurityGroupId : fromSg[0].inputs.referencedSecurityGroupId);
          assert.match(fromSg[0].inputs.referencedSecurityGroupId, /^sg-/);
        });

      it("keeps snapshot images in an immutable, scanned, encrypted repository holding the last N", () => {
        const snap = rec.one("aws:ecr/repository:Repository", /-snapshots$/).inputs;
        assert.equal(snap.imageTagMutability, "IMMUTABLE");
        assert.equal(snap.imageScanningConfiguration.scanOnPush, true);
        assert.equal(snap.encryptionConfigurations[0].encryptionType, "KMS");
        const policy = JSON.parse(rec.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", /-snapshots$/).inputs.policy);
        const keep = policy.rules.find((r: { selection: { countType: string } }) => r.selection.countType === "imageCountMoreThan");
        assert.equal(keep.selection.countNumber, cfg.snapshot.keepImages);
        const tools = rec.one("aws:ecr/repository:Repository", /-tools$/).inputs;
        assert.equal(tools.imageScanningConfiguration.scanOnPush, true);
      });

      it("builds the tools image for the master's PostgreSQL major and the nodes' architecture", () => {
        const img = rec.one("docker-build:index:Image").inputs;
        const major = cfg.master.engineMajor;
        assert.equal(img.buildArgs.PG_MAJOR, String(major));
        assert.equal(img.buildArgs.BASE_IMAGE, cfg.images.postgresBaseImage ?? `postgres:${major}-bookworm`);
        assert.equal(img.push, true);
        assert.match(img.dockerfile.location, /images\/tools\.Dockerfile$/);
        const arm = cfg.cluster.mode === "new" && cfg.cluster.nodes.architecture === "arm64";
        assert.deepEqual(img.platforms, [arm ? "linux/arm64" : "linux/amd64"]);
        assert.equal(img.registries[0].username, "AWS");
        assert.ok(rec.invokes.some((i) => i.token === "aws:ecr/getAuthorizationToken:getAuthorizationToken"));
      });

      it("grants the bake least privilege: IRSA for one ServiceAccount, scoped ECR/Secrets Manager/KMS", async () => {
        const bakeRole = rec.one("aws:iam/role:Role", /-snapshot-bake$/);
        const trust = statements(bakeRole.inputs.assumeRolePolicy);
        assert.equal(trust.length, 1);
        const cond = trust[0].Condition!.StringEquals;
        assert.equal(Object.entries(cond).find(([k]) => k.endsWith(":sub"))?.[1], `system:serviceaccount:${tenantNs()}:cndb-bake`);
        assert.equal(Object.entries(cond).find(([k]) => k.endsWith(":aud"))?.[1], "sts.amazonaws.com");
        assert.equal(trust[0].Action, "sts:AssumeRoleWithWebIdentity");

        const stmts = statements(rec.one("aws:iam/rolePolicy:RolePolicy").inputs.policy);
        for (const s of stmts) {
          const actions = ([] as string[]).concat(s.Action);
          const resources = ([] as string[]).concat(s.Resource ?? []);
          assert.ok(actions.every((a) => !a.includes("*")), `wildcard action in ${s.Sid}`);
          if (actions.length === 1 && actions[0] === "ecr:GetAuthorizationToken") assert.deepEqual(resources, ["*"]);
          else assert.ok(resources.length > 0 && resources.every((r) => r.startsWith("arn:") && !r.includes("*")), `${s.Sid} is not scoped: ${resources}`);
        }
        const repoArn = (re: RegExp) => `arn:aws:ecr:${rec.region}:123456789012:repository/${rec.one("aws:ecr/repository:Repository", re).name}`;
        assert.equal(stmts.find((s) => s.Sid === "PushSnapshotImages")!.Resource, repoArn(/-snapshots$/));
        assert.equal(stmts.find((s) => s.Sid === "PullBaseImage")!.Resource, repoArn(/-tools$/));
        const secretArn = await valueOf(exports.masterSecretArn as never);
        assert.equal(stmts.find((s) => s.Sid === "ReadMasterSecret")!.Resource, secretArn);
        const kms = stmts.find((s) => s.Sid === "DecryptMasterSecret");
        assert.equal(kms?.Resource, cfg.master.kmsKeyArn, "kms:Decrypt exactly when a CMK is configured");

        const sa = rec.ofType("kubernetes:core/v1:ServiceAccount").find((s) => s.inputs.metadata.name === "cndb-bake")!;
        assert.equal(sa.inputs.metadata.annotations["eks.amazonaws.com/role-arn"], `arn:aws:iam::123456789012:role/${bakeRole.name}`);
      });

      it("lets the bake patch only the fleet Deployment", () => {
        const role = rec.one("kubernetes:rbac.authorization.k8s.io/v1:Role").inputs;
        assert.deepEqual(role.rules, [{ apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["reader"], verbs: ["get", "patch"] }]);
        const binding = rec.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs;
        assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "cndb-bake", namespace: tenantNs() }]);
      });

      it("bakes first: the Deployment waits for the initial Job and runs the image it pushed", () => {
        const job = rec.one("kubernetes:batch/v1:Job");
        const dep = rec.one("kubernetes:apps/v1:Deployment");
        assert.ok(rec.dependsOn(dep.urn, job.urn), "the Deployment depends on the initial bake Job");
        const tag = job.inputs.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === "SNAPSHOT_TAG").value;
        assert.match(tag, new RegExp(`^v${cfg.snapshot.version.replace(/\./g, "\\.")}-[0-9a-f]{8}$`));
        assert.equal(job.inputs.metadata.name, `bake-${tag}`);
        assert.equal(job.deleteBeforeReplace, true);
        const repoUrl = `123456789012.dkr.ecr.${rec.region}.amazonaws.com/${rec.one("aws:ecr/repository:Repository", /-snapshots$/).name}`;
        for (const c of dep.inputs.spec.template.spec.containers) assert.equal(c.image, `${repoUrl}:${tag}`);
        assert.equal(job.inputs.spec.template.spec.containers[0].command.join(" "), "/bin/bash /etc/cndb/bake/bake.sh");
      });

      it("keeps promoted images and HPA scaling across `pulumi up` (ignoreChanges on exactly those fields)", () => {
        const dep = rec.one("kubernetes:apps/v1:Deployment");
        assert.deepEqual(dep.ignoreChanges, FLEET_IGNORE_CHANGES);
        const names = dep.inputs.spec.template.spec.containers.map((c: { name: string }) => c.name);
        assert.deepEqual(names, ["reader", "api"], "containers[0] and [1] are the ones the ignore paths name");
        const bakeSh: string = rec.ofType("kubernetes:core/v1:ConfigMap").find((c) => c.inputs.metadata.name === "cndb-bake-spec")!.inputs.data["bake.sh"];
        assert.match(bakeSh, /set image deployment\/reader reader="\$pushed" api="\$pushed"/);
      });

      it("runs the reader and the API sidecar as the contract says", async () => {
        const [reader, api] = rec.one("kubernetes:apps/v1:Deployment").inputs.spec.template.spec.containers;
        assert.deepEqual(reader.args, [
          "replica", "--snapshot", IMAGE_SNAPSHOT_DIR, "--in-place", "--port", String(READER_PORT), "--listen", "0.0.0.0",
          "--socket-dir", SOCKET_DIR, "--warmup", cfg.fleet.warmup, "--ready-file", READY_FILE,
        ]);
        assert.deepEqual(reader.readinessProbe.exec.command, ["test", "-f", READY_FILE]);
        assert.equal(reader.livenessProbe.tcpSocket.port, READER_PORT);
        const db = cfg.master.databaseName;
        assert.deepEqual(api.args, [
          "api", "--replica", `postgres://reader@/${db}?host=${SOCKET_DIR}`, "--snapshot", IMAGE_SNAPSHOT_DIR,
          "--port", String(API_PORT), "--listen", "0.0.0.0", "--config", "/etc/cndb/api.json",
        ]);
        assert.equal(api.readinessProbe.httpGet.path, "/readyz");
        assert.equal(api.livenessProbe.httpGet.path, "/healthz");
        assert.equal(reader.resources.requests.cpu, cfg.fleet.reader.cpu);
        assert.equal(reader.resources.limits.memory, cfg.fleet.reader.memory);
        const spread = rec.one("kubernetes:apps/v1:Deployment").inputs.spec.template.spec.topologySpreadConstraints;
        assert.ok(spread.some((s: { topologyKey: string }) => s.topologyKey === "topology.kubernetes.io/zone"));
      });

      it("sizes the fleet from config and admits only the allowed namespaces", () => {
        const hpa = rec.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs.spec;
        assert.deepEqual([hpa.minReplicas, hpa.maxReplicas, hpa.metrics[0].resource.target.averageUtilization], [cfg.fleet.minReplicas, cfg.fleet.maxReplicas, cfg.fleet.targetCpuPercent]);
        assert.equal(rec.one("kubernetes:policy/v1:PodDisruptionBudget").inputs.spec.maxUnavailable, cfg.fleet.maxUnavailable);
        const np = rec.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs.spec;
        assert.deepEqual(np.policyTypes, ["Ingress", "Egress"]);
        assert.deepEqual(np.egress, []);
        const from = np.ingress[0].from;
        assert.deepEqual(from[0], { podSelector: {} });
        assert.deepEqual(
          from.slice(1).map((f: any) => f.namespaceSelector.matchLabels["kubernetes.io/metadata.name"]),
          cfg.fleet.allowedNamespaces,
        );
        const svc = rec.one("kubernetes:core/v1:Service").inputs;
        assert.equal(svc.spec.type, cfg.fleet.public ? "LoadBalancer" : "ClusterIP");
        assert.deepEqual(svc.spec.ports.map((p: { port: number }) => p.port), [API_PORT, READER_PORT]);
      });

      if (cfg.snapshot.schedule !== "off")
        it("schedules the refresh CronJob from config", () => {
          const cron = rec.one("kubernetes:batch/v1:CronJob").inputs.spec;
          assert.equal(cron.schedule, cfg.snapshot.schedule);
          assert.equal(cron.concurrencyPolicy, "Forbid");
          const env = cron.jobTemplate.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
          assert.ok(!env.includes("SNAPSHOT_TAG"), "scheduled bakes tag with the snapshot id");
        });

      const cluster = cfg.cluster;
      if (cluster.mode === "new")
        it("creates an EKS cluster with a private endpoint, IRSA and encrypted IMDSv2-only nodes", () => {
          const n = cluster.nodes;
          const eks = rec.one("eks:index:Cluster");
          assert.equal(eks.remote, true);
          assert.equal(eks.inputs.endpointPublicAccess, cluster.endpointPublicAccess);
          assert.equal(eks.inputs.endpointPrivateAccess, true);
          assert.equal(eks.inputs.createOidcProvider, true);
          assert.equal(eks.inputs.skipDefaultNodeGroup, true);
          assert.equal(eks.inputs.vpcCniOptions.enableNetworkPolicy, true, "NetworkPolicies are enforced");
          const ng = rec.one("eks:index:ManagedNodeGroup").inputs;
          const family = n.amiFamily === "bottlerocket" ? "BOTTLEROCKET" : "AL2023";
          assert.match(ng.amiType, new RegExp(`^${family}_${n.architecture === "arm64" ? "ARM_64" : "x86_64"}`));
          assert.deepEqual(ng.scalingConfig, { minSize: n.minSize, maxSize: n.maxSize, desiredSize: n.desiredSize ?? n.minSize });
          assert.equal(ng.ignoreScalingChanges, true);
          const lt = rec.one("aws:ec2/launchTemplate:LaunchTemplate").inputs;
          assert.equal(lt.metadataOptions.httpTokens, "required");
          assert.equal(lt.metadataOptions.httpPutResponseHopLimit, 1);
          assert.ok(lt.blockDeviceMappings.every((b: { ebs: { encrypted: string } }) => b.ebs.encrypted === "true"));
          const data = lt.blockDeviceMappings.at(-1);
          assert.equal(data.ebs.volumeSize, n.diskSizeGiB);
          assert.equal(data.deviceName, n.amiFamily === "bottlerocket" ? "/dev/xvdb" : "/dev/xvda");
        });

      if (cluster.mode === "shared")
        it("reads the shared cluster from its stack", () => {
          const ref = rec.one("pulumi:pulumi:StackReference");
          assert.equal(ref.id, cluster.stack);
          const shared = SHARED_CLUSTER[cluster.stack as keyof typeof SHARED_CLUSTER];
          assert.deepEqual(rec.one("aws:rds/subnetGroup:SubnetGroup").inputs.subnetIds, shared.privateSubnetIds);
        });

      it("exports the endpoints, the repository, the image and the namespace", async () => {
        const out = async (k: string) => String(await valueOf(exports[k] as never));
        assert.match(await out("masterEndpoint"), /^.+\.rds\.amazonaws\.com:5432$/);
        assert.match(await out("snapshotRepositoryUrl"), /^123456789012\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/.+-snapshots$/);
        assert.match(await out("currentSnapshotImage"), /-snapshots:v.+-[0-9a-f]{8}$/);
        assert.equal(await out("namespace"), tenantNs());
        const host = cfg.fleet.public ? /elb/ : new RegExp(`^reader\\.${tenantNs()}\\.svc\\.cluster\\.local`);
        assert.match((await out("readApiUrl")).replace(/^http:\/\//, ""), host);
        assert.match(await out("readOnlyPostgresEndpoint"), /:5432$/);
      });
    });
  }

  it("every check that applies only to some stacks applies to at least one stack file", () => {
    const cfgs = stackFiles().map((f) => parsedConfig(loadStackConfig(f, STACK_SECRETS[stackName(f)] ?? {}).config));
    assert.ok(cfgs.some((c) => c.master.mode === "create"), "a stack creates its master");
    assert.ok(cfgs.some((c) => c.snapshot.schedule !== "off"), "a stack has a refresh schedule");
    assert.ok(cfgs.some((c) => c.cluster.mode === "new"), "a stack creates its cluster");
    assert.ok(cfgs.some((c) => c.cluster.mode === "shared"), "a stack uses a shared cluster");
  });

  it("prod's API tokens become a Secret mounted as files, never ConfigMap text", async () => {
    const { config, secretKeys } = loadStackConfig("Pulumi.prod.yaml", STACK_SECRETS.prod);
    const { rec } = await runProgram(config, secretKeys, "prod");
    const secret = rec.ofType("kubernetes:core/v1:Secret").find((s) => s.inputs.metadata.name === "cndb-api-tokens")!;
    assert.deepEqual(Object.keys(secret.inputs.stringData).sort(), ["search", "storefront"]);
    const apiJson = JSON.parse(rec.ofType("kubernetes:core/v1:ConfigMap").find((c) => c.inputs.metadata.name === "cndb-api-config")!.inputs.data["api.json"]);
    assert.deepEqual(apiJson.auth.tokens.map((t: { file: string }) => t.file), ["/etc/cndb/secrets/storefront", "/etc/cndb/secrets/search"]);
    const api = rec.one("kubernetes:apps/v1:Deployment").inputs.spec.template.spec.containers[1];
    assert.ok(api.volumeMounts.some((m: { mountPath: string; readOnly: boolean }) => m.mountPath === "/etc/cndb/secrets" && m.readOnly));
  });

  it("prod without its apiTokens secret fails, naming the missing setting", async () => {
    const { config, secretKeys } = loadStackConfig("Pulumi.prod.yaml");
    await assert.rejects(runProgram(config, secretKeys, "prod"), /ReadFleet: apiTokens must hold the token\(s\) storefront, search/);
  });

  it("a misspelt config key fails instead of falling back to a default", async () => {
    const { config, secretKeys } = loadStackConfig("Pulumi.dev.yaml");
    config["container-native-db:flet"] = config["container-native-db:fleet"];
    await assert.rejects(runProgram(config, secretKeys), /container-native-db:flet is not a known key/);
  });

  const badValues: [string, unknown, RegExp][] = [
    ["fleet", { minReplicas: 3, maxReplicas: 1 }, /fleet\.maxReplicas must be >= fleet\.minReplicas \(got 1 < 3\)/],
    // The read API's settings fail the preview, not the pods.
    ["api", { maxLimit: 0 }, /api\.maxLimit: Too small: expected number to be >0 \(got 0\)/],
    ["api", { auth: { tokens: [{ name: "web", routes: ["writes"] }] } }, /api\.auth\.tokens\.0\.routes\.0 must be \* or one of snapshot, tables, rows/],
  ];
  for (const [key, value, error] of badValues) {
    it(`a bad ${key} value fails with its key path before any resource is registered: ${JSON.stringify(value)}`, async () => {
      const { config, secretKeys } = loadStackConfig("Pulumi.dev.yaml");
      config[`container-native-db:${key}`] = JSON.stringify(value);
      const recorder = new Recorder();
      await assert.rejects(
        runWithMocks(() => {
          delete require.cache[require.resolve("../../index")];
          return require("../../index");
        }, { config, secretKeys, recorder }),
        error,
      );
      assert.deepEqual(recorder.resources, []);
    });
  }
});
