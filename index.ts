import * as pulumi from "@pulumi/pulumi";
import {
  CONFIG_KEYS,
  CONFIG_NAMESPACE,
  ConfigError,
  ContainerNativeDatabase,
  databaseArgsFromConfig,
  parseStackConfig,
  type SharedClusterOutputs,
} from "./components";

/**
 * The stack program: read and validate this stack's config (stacks/Pulumi.<stack>.yaml), then build one
 * ContainerNativeDatabase for its tenant/environment.
 */

/** The one secret key: the read API's bearer tokens by name, {"<name>": "<token>"} (see docs/deploy.md). */
const SECRET_KEYS = ["apiTokens"];

const cfg = new pulumi.Config(CONFIG_NAMESPACE);

// A misspelt key must fail, not silently fall back to a default.
const unknown = Object.keys(pulumi.runtime.allConfig())
  .filter((k) => k.startsWith(`${CONFIG_NAMESPACE}:`))
  .map((k) => k.slice(CONFIG_NAMESPACE.length + 1))
  .filter((k) => !(CONFIG_KEYS as string[]).includes(k) && !SECRET_KEYS.includes(k));
if (unknown.length > 0)
  throw new ConfigError(unknown.map((k) => `${CONFIG_NAMESPACE}:${k} is not a known key (known: ${[...CONFIG_KEYS, ...SECRET_KEYS].join(", ")})`));

/** Object values arrive as JSON text; plain strings stay strings. */
function readValue(key: string): unknown {
  const v = cfg.get(key);
  if (v === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(v);
    return typeof parsed === "object" || typeof parsed === "number" || typeof parsed === "boolean" ? parsed : v;
  } catch {
    return v;
  }
}

const config = parseStackConfig(Object.fromEntries(CONFIG_KEYS.map((k) => [k, readValue(k)])));

let shared: SharedClusterOutputs | undefined;
if (config.cluster.mode === "shared") {
  const ref = new pulumi.StackReference(`${config.tenant}-cluster`, { name: config.cluster.stack });
  const o = config.cluster.outputs;
  shared = {
    kubeconfig: ref.requireOutput(o.kubeconfig).apply((k) => (typeof k === "string" ? k : JSON.stringify(k))),
    oidcProviderArn: ref.requireOutput(o.oidcProviderArn) as pulumi.Output<string>,
    oidcProviderUrl: ref.requireOutput(o.oidcProviderUrl) as pulumi.Output<string>,
    nodeSecurityGroupId: ref.requireOutput(o.nodeSecurityGroupId) as pulumi.Output<string>,
    vpcId: ref.requireOutput(o.vpcId) as pulumi.Output<string>,
    privateSubnetIds: ref.requireOutput(o.privateSubnetIds) as pulumi.Output<string[]>,
  };
}

const db = new ContainerNativeDatabase(
  `${config.tenant}-${config.environment}`,
  databaseArgsFromConfig(config, shared, cfg.getSecretObject<Record<string, string>>("apiTokens")),
);

export const masterEndpoint = db.masterEndpoint;
export const masterSecretArn = db.masterSecretArn;
export const snapshotRepositoryUrl = db.snapshotRepositoryUrl;
export const currentSnapshotImage = db.currentSnapshotImage;
export const readApiUrl = db.readApiUrl;
export const readOnlyPostgresEndpoint = db.readOnlyPostgresEndpoint;
export const namespace = db.namespace;
export const readerPassword = db.readerPassword;
export const kubeconfig = db.kubeconfig;
