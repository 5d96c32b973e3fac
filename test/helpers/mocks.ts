import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import yaml from "js-yaml";

/**
 * Pulumi mocks for the deploy-time tests. Records every resource registration as the engine would see
 * it (type, name, URN, inputs, parent, provider, dependencies, ignoreChanges, which inputs are secret)
 * and answers the few provider invokes and outputs the components read (ECR auth token, caller
 * identity, StackReference outputs, @pulumi/eks cluster outputs). The values it answers are only
 * what a provider would return; tests assert on the recorded inputs.
 */

export const ACCOUNT = "123456789012";

export interface Recorded {
  type: string;
  name: string;
  urn: string;
  /** Inputs with secrets unwrapped; `secretPaths` says which were secret. */
  inputs: Record<string, any>;
  secretPaths: string[];
  parent: string;
  /** "urn::id" of an explicit provider, "" for the default one. */
  provider: string;
  dependencies: string[];
  ignoreChanges: string[];
  custom: boolean;
  remote: boolean;
  deleteBeforeReplace: boolean;
  customTimeouts?: { create?: string; update?: string; pb_delete?: string };
  /** Set for read resources (StackReference). */
  id?: string;
}

export interface MockOptions {
  /** Outputs of every StackReference, by stack name. */
  stackOutputs?: Record<string, Record<string, unknown>>;
  region?: string;
}

const SIG = (pulumi.runtime as unknown as { specialSigKey: string }).specialSigKey;
const SECRET = (pulumi.runtime as unknown as { specialSecretSig: string }).specialSecretSig;

function unwrap(v: unknown, path: string, secrets: string[]): any {
  if (Array.isArray(v)) return v.map((x, i) => unwrap(x, `${path}[${i}]`, secrets));
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SIG] === SECRET) {
      secrets.push(path);
      return unwrap(o.value, path, secrets);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x, path ? `${path}.${k}` : k, secrets)]));
  }
  return v;
}

const hex = (s: string, n = 12) => createHash("sha256").update(s).digest("hex").slice(0, n);

export class Recorder implements pulumi.runtime.Mocks {
  readonly resources: Recorded[] = [];
  readonly invokes: { token: string; inputs: any }[] = [];
  readonly region: string;

  constructor(private readonly opts: MockOptions = {}) {
    this.region = opts.region ?? "eu-west-1";
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
    this.invokes.push({ token: args.token, inputs: args.inputs });
    switch (args.token) {
      case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        return {
          id: this.region,
          registryId: args.inputs.registryId ?? ACCOUNT,
          userName: "AWS",
          password: "mock-ecr-password",
          authorizationToken: Buffer.from("AWS:mock-ecr-password").toString("base64"),
          proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${this.region}.amazonaws.com`,
          expiresAt: "2030-01-01T00:00:00Z",
        };
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "AIDTEST", id: ACCOUNT };
      case "aws:index/getRegion:getRegion":
        return { name: this.region, region: this.region, id: this.region };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
      default:
        throw new Error(`unmocked invoke ${args.token}`);
    }
  }

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string | undefined; state: Record<string, any> } {
    const i = args.inputs;
    const n = args.name;
    const r = this.region;
    const id = args.id || `${n}-id`;
    switch (args.type) {
      case "pulumi:pulumi:StackReference": {
        const outputs = this.opts.stackOutputs?.[i.name ?? args.id];
        if (!outputs) throw new Error(`no mocked outputs for stack ${i.name ?? args.id}`);
        return { id: args.id, state: { name: i.name ?? args.id, outputs, secretOutputNames: [] } };
      }
      case "aws:ecr/repository:Repository":
        return {
          id: n,
          state: { ...i, name: n, arn: `arn:aws:ecr:${r}:${ACCOUNT}:repository/${n}`, registryId: ACCOUNT, repositoryUrl: `${ACCOUNT}.dkr.ecr.${r}.amazonaws.com/${n}` },
        };
      case "aws:iam/role:Role":
        return { id: n, state: { ...i, name: n, arn: `arn:aws:iam::${ACCOUNT}:role/${n}` } };
      case "aws:ec2/securityGroup:SecurityGroup":
        return { id: `sg-${hex(n)}`, state: { ...i, arn: `arn:aws:ec2:${r}:${ACCOUNT}:security-group/sg-${hex(n)}` } };
      case "aws:ec2/launchTemplate:LaunchTemplate":
        return { id: `lt-${hex(n)}`, state: { ...i, latestVersion: 1 } };
      case "aws:rds/instance:Instance":
        return {
          id: n,
          state: {
            ...i,
            address: `${n}.c0abcdefgh.${r}.rds.amazonaws.com`,
            port: 5432,
            endpoint: `${n}.c0abcdefgh.${r}.rds.amazonaws.com:5432`,
            masterUserSecrets: [{ secretArn: `arn:aws:secretsmanager:${r}:${ACCOUNT}:secret:rds!db-${hex(n)}-AbCdEf`, kmsKeyId: i.masterUserSecretKmsKeyId ?? "", secretStatus: "active" }],
          },
        };
      case "aws:rds/subnetGroup:SubnetGroup":
      case "aws:rds/parameterGroup:ParameterGroup":
        return { id: n, state: { ...i, name: n } };
      case "docker-build:index:Image": {
        const tag = (i.tags as string[] | undefined)?.[0] ?? n;
        const digest = `sha256:${createHash("sha256").update(tag).digest("hex")}`;
        return { id: n, state: { ...i, digest, ref: `${tag}@${digest}`, contextHash: hex(tag, 64) } };
      }
      case "random:index/randomPassword:RandomPassword":
        return { id: n, state: { ...i, result: `pw${hex(n, 30)}` } };
      case "eks:index:Cluster":
        return {
          id: undefined,
          state: {
            kubeconfigJson: JSON.stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: n }] }),
            kubeconfig: { apiVersion: "v1", kind: "Config" },
            oidcProviderArn: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.${r}.amazonaws.com/id/${hex(n, 32).toUpperCase()}`,
            oidcProviderUrl: `https://oidc.eks.${r}.amazonaws.com/id/${hex(n, 32).toUpperCase()}`,
            oidcIssuer: `oidc.eks.${r}.amazonaws.com/id/${hex(n, 32).toUpperCase()}`,
            eksCluster: { name: n, vpcConfig: { clusterSecurityGroupId: `sg-eks${hex(n, 10)}` } },
            nodeSecurityGroupId: `sg-node${hex(n, 9)}`,
            clusterSecurityGroupId: `sg-ctl${hex(n, 10)}`,
          },
        };
      default:
        if (args.type.startsWith("kubernetes:") && i.kind === "Service") {
          const lb = i.spec?.type === "LoadBalancer" ? { loadBalancer: { ingress: [{ hostname: `${n}-${hex(n, 8)}.elb.${r}.amazonaws.com` }] } } : { loadBalancer: {} };
          return { id: `${i.metadata?.namespace}/${i.metadata?.name}`, state: { ...i, status: lb } };
        }
        return { id: args.custom === false ? undefined : id, state: { ...i } };
    }
  }

  // ---- queries used by the tests ----
  ofType(type: string): Recorded[] {
    return this.resources.filter((r) => r.type === type);
  }
  one(type: string, name?: string | RegExp): Recorded {
    const found = this.ofType(type).filter((r) => name === undefined || (typeof name === "string" ? r.name === name : name.test(r.name)));
    if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${found.length}: ${found.map((f) => f.name).join(", ")}`);
    return found[0];
  }
  byUrn(urn: string): Recorded | undefined {
    return this.resources.find((r) => r.urn === urn);
  }
  /** Kubernetes objects (type token kubernetes:<group>/<version>:<Kind>). */
  kubernetes(): Recorded[] {
    return this.resources.filter((r) => r.type.startsWith("kubernetes:") && r.custom);
  }
  /** Type counts, for "the expected set of resources". */
  counts(): Record<string, number> {
    const c: Record<string, number> = {};
    for (const r of this.resources) c[r.type] = (c[r.type] ?? 0) + 1;
    return c;
  }
  /** Whether `urn` (transitively) depends on `on` through recorded dependencies. */
  dependsOn(urn: string, on: string, seen = new Set<string>()): boolean {
    if (seen.has(urn)) return false;
    seen.add(urn);
    const r = this.byUrn(urn);
    if (!r) return false;
    return r.dependencies.includes(on) || r.dependencies.some((d) => this.dependsOn(d, on, seen));
  }
}

type Req = {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProvider(): string;
  getCustom(): boolean;
  getRemote?(): boolean;
  getDependenciesList?(): string[];
  getIgnorechangesList?(): string[];
  getDeletebeforereplace?(): boolean;
  getCustomtimeouts?(): { toObject(): Recorded["customTimeouts"] } | undefined;
  getObject?(): unknown;
  getProperties?(): unknown;
  getId?(): string;
};

interface MockMonitorLike {
  registerResource(req: Req, cb: unknown): Promise<void>;
  readResource(req: Req, cb: unknown): Promise<void>;
  newUrn(parent: string, type: string, name: string): string;
}

const deserialize = (pulumi.runtime as unknown as { deserializeProperties(s: unknown, keepUnknowns?: boolean): Record<string, unknown> }).deserializeProperties;
const waitForRPCs = (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs;

function record(rec: Recorder, monitor: MockMonitorLike, req: Req, struct: unknown, custom: boolean): void {
  const secretPaths: string[] = [];
  const inputs = unwrap(deserialize(struct, true), "", secretPaths);
  rec.resources.push({
    type: req.getType(),
    name: req.getName(),
    urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
    inputs,
    secretPaths,
    parent: req.getParent(),
    provider: req.getProvider(),
    dependencies: req.getDependenciesList?.() ?? [],
    ignoreChanges: req.getIgnorechangesList?.() ?? [],
    custom,
    remote: req.getRemote?.() ?? false,
    deleteBeforeReplace: req.getDeletebeforereplace?.() ?? false,
    customTimeouts: req.getCustomtimeouts?.()?.toObject(),
    id: req.getId?.() || undefined,
  });
}

export const PROJECT = "container-native-db";

/**
 * Installs fresh mocks and config, runs `program`, waits until every registration has been answered,
 * and returns what was recorded. `config` keys are full ("container-native-db:fleet"); values are
 * strings as the engine passes them (objects as JSON).
 */
export async function runWithMocks<T>(
  program: () => T,
  opts: MockOptions & { config?: Record<string, string>; secretKeys?: string[]; stack?: string; recorder?: Recorder } = {},
): Promise<{ rec: Recorder; result: T }> {
  const rec = opts.recorder ?? new Recorder(opts);
  pulumi.runtime.setAllConfig(opts.config ?? {}, opts.secretKeys ?? []);
  await pulumi.runtime.setMocks(rec, PROJECT, opts.stack ?? "test", false);
  const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitorLike;
  const register = monitor.registerResource.bind(monitor);
  const read = monitor.readResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    record(rec, monitor, req, req.getObject!(), req.getCustom());
    return register(req, cb);
  };
  monitor.readResource = (req, cb) => {
    record(rec, monitor, req, req.getProperties!(), true);
    return read(req, cb);
  };
  const result = program();
  await waitForRPCs();
  return { rec, result };
}

/** Resolves an Output's value under mocks (rejects if it failed). */
export function valueOf<T>(o: pulumi.Input<T> | undefined): Promise<T> {
  return (pulumi.output(o) as unknown as { promise(): Promise<T> }).promise();
}

// ---- stack files ----

export const STACKS_DIR = path.resolve(__dirname, "../../stacks");

export function stackFiles(): string[] {
  return readdirSync(STACKS_DIR).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).sort();
}

export function stackName(file: string): string {
  return file.replace(/^Pulumi\./, "").replace(/\.yaml$/, "");
}

/**
 * A stack file's config as the Pulumi engine hands it to the program: "<ns>:<key>" -> string, objects
 * as JSON. Secure values can't be decrypted here: `secretValues[key]` stands in for them (and adds the
 * secrets a stack sets outside the file); all are listed as secret keys.
 */
export function loadStackConfig(file: string, secretValues: Record<string, string> = {}): { config: Record<string, string>; secretKeys: string[] } {
  const doc = yaml.load(readFileSync(path.join(STACKS_DIR, file), "utf8")) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    if (v && typeof v === "object" && "secure" in (v as object)) {
      if (!(k in secretValues)) throw new Error(`${file}: ${k} is secure; give the test a value for it`);
      config[k] = secretValues[k];
      secretKeys.push(k);
    } else config[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  // Secrets a real stack sets with `pulumi config set --secret` (and so can't ship in the file).
  for (const [k, v] of Object.entries(secretValues)) {
    if (k in config) continue;
    config[k] = v;
    secretKeys.push(k);
  }
  return { config, secretKeys };
}

// ---- Kubernetes schema ----

/** Validates a recorded Kubernetes object against the Kubernetes OpenAPI schema (kubernetes-models). */
export function validateKubernetesObject(r: Recorded): void {
  const m = /^kubernetes:([^/]+)\/([^:]+):(.+)$/.exec(r.type);
  if (!m) throw new Error(`not a Kubernetes type: ${r.type}`);
  const [, group, version, kind] = m;
  const mod = require(`kubernetes-models/${group === "core" ? "" : `${group}/`}${version}/${kind}`) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[kind];
  if (!Model) throw new Error(`kubernetes-models has no ${group}/${version} ${kind}`);
  new Model(r.inputs).validate();
}
