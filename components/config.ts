import { z } from "zod";
import { apiSettings } from "./api-settings";

/**
 * The stack configuration of one tenant/environment (the `container-native-db:*` keys of a
 * `stacks/Pulumi.<stack>.yaml`). Pure: no Pulumi here, so it is tested directly and reused by `index.ts`.
 * Defaults are the secure choice; every error names the key path and what is allowed.
 */

export const CONFIG_NAMESPACE = "container-native-db";

/** A DNS-1123 label: what Kubernetes allows in a namespace name. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes resource quantities, e.g. "500m", "2", "1Gi". */
const QUANTITY = /^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const quantity = z.string().regex(QUANTITY, 'must be a Kubernetes quantity such as "500m", "2" or "1Gi"');
const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, 'must be an IPv4 CIDR such as "10.0.0.0/16"');

/** Supported PostgreSQL majors: RDS offers them, and the bake's pg_dump/pg_restore come from the same major. */
export const POSTGRES_MAJORS = [14, 15, 16, 17] as const;
const postgresMajor = z
  .number()
  .int()
  .refine((v) => (POSTGRES_MAJORS as readonly number[]).includes(v), {
    message: `must be one of ${POSTGRES_MAJORS.join(", ")}`,
  });

/**
 * Node AMI families for a new EKS node group. `bottlerocket` (default): the aws-k8s-1.28+ variants format
 * the data partition holding /var/lib/containerd as XFS, so overlayfs copy-up can clone instead of copy
 * (see docs/deploy.md for what is and isn't verified). `al2023`: root (and containerd) on XFS as well.
 */
export const NODE_AMI_FAMILIES = ["bottlerocket", "al2023"] as const;
export const NODE_ARCHITECTURES = ["x86_64", "arm64"] as const;

/** Five-field cron, or one of the @-macros Kubernetes CronJobs accept. */
const CRON = /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$/;
const CRON_FIELD = /^[0-9A-Za-z*/,?-]+$/;
const schedule = z
  .string()
  .refine((s) => s === "off" || (CRON.test(s.trim()) && s.trim().split(/\s+/).every((f) => f.startsWith("@") || CRON_FIELD.test(f))), {
    message: 'must be a 5-field cron expression (e.g. "0 */6 * * *"), an @-macro (e.g. "@daily") or "off"',
  });

const network = z
  .object({
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'must be a VPC id such as "vpc-0abc123"'),
    /** Private subnets in at least two zones: RDS subnet groups and EKS both require two AZs. */
    privateSubnetIds: z
      .array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id such as "subnet-0abc123"'))
      .min(2, "must list at least 2 private subnets (two availability zones)"),
  })
  .strict();

const nodeGroup = z
  .object({
    amiFamily: z.enum(NODE_AMI_FAMILIES).default("bottlerocket"),
    architecture: z.enum(NODE_ARCHITECTURES).default("x86_64"),
    instanceTypes: z.array(z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'must be an EC2 instance type such as "m7i.large"')).min(1).default(["m7i.large"]),
    minSize: z.number().int().min(1).default(2),
    maxSize: z.number().int().min(1).default(6),
    desiredSize: z.number().int().min(1).optional(),
    /** Holds the container images and their writable layers (the readers' copy-up); size it for several snapshots. */
    diskSizeGiB: z.number().int().min(20).max(16384).default(100),
  })
  .strict();

const clusterNew = z
  .object({
    mode: z.literal("new"),
    /** EKS Kubernetes version, e.g. "1.33". */
    version: z.string().regex(/^1\.\d{2}$/, 'must be an EKS version such as "1.33"').default("1.33"),
    /** The API server is private unless this is set (then only from publicAccessCidrs). */
    endpointPublicAccess: z.boolean().default(false),
    publicAccessCidrs: z.array(cidr).default([]),
    nodes: nodeGroup.default(() => nodeGroup.parse({})),
  })
  .strict();

const clusterShared = z
  .object({
    mode: z.literal("shared"),
    /** Fully qualified stack name of the shared cluster stack, e.g. "acme-org/eks-cluster/prod". */
    stack: z.string().regex(/^[\w.-]+\/[\w.-]+\/[\w.-]+$/, 'must be "<org>/<project>/<stack>"'),
    /** Output names read from that stack (override when the cluster stack names them differently). */
    outputs: z
      .object({
        kubeconfig: z.string().default("kubeconfig"),
        oidcProviderArn: z.string().default("oidcProviderArn"),
        oidcProviderUrl: z.string().default("oidcProviderUrl"),
        nodeSecurityGroupId: z.string().default("nodeSecurityGroupId"),
        vpcId: z.string().default("vpcId"),
        privateSubnetIds: z.string().default("privateSubnetIds"),
      })
      .strict()
      .default({
        kubeconfig: "kubeconfig",
        oidcProviderArn: "oidcProviderArn",
        oidcProviderUrl: "oidcProviderUrl",
        nodeSecurityGroupId: "nodeSecurityGroupId",
        vpcId: "vpcId",
        privateSubnetIds: "privateSubnetIds",
      }),
  })
  .strict();

const kmsKeyArn = z.string().regex(/^arn:aws[\w-]*:kms:[\w-]+:\d{12}:key\/[\w-]+$/, "must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)");

const masterCreate = z
  .object({
    mode: z.literal("create"),
    engineMajor: postgresMajor.default(16),
    instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an RDS instance class such as "db.t4g.medium"').default("db.t4g.medium"),
    allocatedStorageGiB: z.number().int().min(20).max(65536).default(50),
    /** Storage autoscaling ceiling; 0 turns storage autoscaling off. */
    maxAllocatedStorageGiB: z.number().int().min(0).max(65536).default(200),
    databaseName: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case PostgreSQL identifier").default("app"),
    username: z.string().regex(/^[a-z_][a-z0-9_]{0,15}$/, "must be a lower-case PostgreSQL identifier of at most 16 characters").default("cndb_admin"),
    multiAz: z.boolean().default(false),
    performanceInsights: z.boolean().default(false),
    backupRetentionDays: z.number().int().min(1).max(35).default(7),
    deletionProtection: z.boolean().default(true),
    skipFinalSnapshot: z.boolean().default(false),
    /** Customer-managed KMS key for storage and the master secret; AWS-managed keys when absent. */
    kmsKeyArn: kmsKeyArn.optional(),
    /** Extra CIDRs admitted on 5432 besides the cluster's nodes (e.g. a bastion subnet). */
    allowedCidrs: z.array(cidr).default([]),
    /** Extra PostgreSQL parameters for the parameter group. */
    parameters: z.record(z.string(), z.string()).default({}),
  })
  .strict();

const masterExisting = z
  .object({
    mode: z.literal("existing"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(5432),
    databaseName: z.string().min(1),
    /** ARN of a Secrets Manager secret holding {"username","password"} (the RDS-managed master secret). */
    secretArn: z.string().regex(/^arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:.+$/, "must be a Secrets Manager secret ARN"),
    engineMajor: postgresMajor,
    /** The CMK that encrypts the secret, if it isn't the AWS-managed key. */
    kmsKeyArn: kmsKeyArn.optional(),
  })
  .strict();

const tablePattern = z.string().min(1).max(200);

const snapshot = z
  .object({
    /** Bumping it re-bakes on `pulumi up` (the initial bake Job's name and image tag derive from it). */
    version: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?$/, 'must be 1-32 characters of a-z, 0-9, "." and "-" (e.g. "1" or "2024-06-01")'),
    /** Refresh schedule of the bake CronJob (UTC), or "off". */
    schedule: schedule.default("0 */6 * * *"),
    /** How many snapshot images the ECR lifecycle policy keeps. */
    keepImages: z.number().int().min(2).max(1000).default(10),
    schemas: z.array(z.string().min(1)).default([]),
    includeTables: z.array(tablePattern).default([]),
    excludeTables: z.array(tablePattern).default([]),
    /** Parallel dump/restore jobs. */
    jobs: z.number().int().min(1).max(64).default(4),
    /** emptyDir size for the dump and the restored PGDATA (about 2.5x the database). */
    workVolumeSize: quantity.default("20Gi"),
    cpu: quantity.default("1"),
    memory: quantity.default("2Gi"),
    timeoutMinutes: z.number().int().min(5).max(24 * 60).default(120),
  })
  .strict();

const containerResources = (cpu: string, memory: string) =>
  z
    .object({ cpu: quantity.default(cpu), memory: quantity.default(memory) })
    .strict()
    .default({ cpu, memory });

const fleet = z
  .object({
    minReplicas: z.number().int().min(1).default(2),
    maxReplicas: z.number().int().min(1).default(10),
    targetCpuPercent: z.number().int().min(10).max(100).default(70),
    /** Requests; memory is also the limit (PostgreSQL under a memory limit must not be overcommitted). */
    reader: containerResources("500m", "1Gi"),
    api: containerResources("250m", "256Mi"),
    /** The reader's writable layer grows by what warm-up copies up; request it so the scheduler knows. */
    ephemeralStorage: quantity.default("10Gi"),
    /** "files" touches every relation file before ready; "full" also prewarms; "none" skips. */
    warmup: z.enum(["files", "full", "none"]).default("files"),
    /** A public (internet-facing NLB) Service instead of the internal default. */
    public: z.boolean().default(false),
    /** Source CIDRs allowed through a public NLB. Required when public is true. */
    publicSourceCidrs: z.array(cidr).default([]),
    /** Namespaces whose pods may reach the fleet (NetworkPolicy). The fleet's own namespace is always allowed. */
    allowedNamespaces: z.array(z.string().regex(DNS_LABEL, "must be a Kubernetes namespace name")).default([]),
    maxUnavailable: z.number().int().min(1).default(1),
  })
  .strict();

export const StackConfigSchema = z
  .object({
    /** Tenant name: the namespace is `cndb-<tenant>`, AWS resources are named `<tenant>-<env>-...`. */
    tenant: z.string().regex(DNS_LABEL, "must be lower-case letters, digits and '-'").max(40),
    environment: z.string().regex(DNS_LABEL, "must be lower-case letters, digits and '-'").max(20).default("dev"),
    network: network.optional(),
    cluster: z.discriminatedUnion("mode", [clusterNew, clusterShared]),
    master: z.discriminatedUnion("mode", [masterCreate, masterExisting]),
    snapshot,
    fleet: fleet.default(() => fleet.parse({})),
    /**
     * The read API's settings, written to api.json as given (plus the token files the deploy fills in).
     * Checked here with the API's own schema (common/api-config.ts), so a bad key fails `pulumi preview`,
     * not the pods. No secrets here.
     */
    api: z
      .record(z.string(), z.unknown())
      .superRefine((api, ctx) => {
        // Re-reported as zod found them (path relative to `api`; zod prefixes it), so formatIssues words them.
        for (const i of apiSettings(api).issues) ctx.addIssue(i as unknown as z.core.$ZodRawIssue);
      })
      .default({}),
    images: z
      .object({
        /** Base of the tools image; pin by digest in production (default: postgres:<master major>-bookworm). */
        postgresBaseImage: z.string().min(1).optional(),
        kubectlVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'must be a version such as "1.33.4"').default("1.33.4"),
      })
      .strict()
      .default({ kubectlVersion: "1.33.4" }),
    tags: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const f = c.fleet;
    if (f.maxReplicas < f.minReplicas)
      ctx.addIssue({
        code: "custom",
        path: ["fleet", "maxReplicas"],
        message: `must be >= fleet.minReplicas (got ${f.maxReplicas} < ${f.minReplicas})`,
      });
    if (f.maxUnavailable >= f.minReplicas && f.minReplicas > 1)
      ctx.addIssue({
        code: "custom",
        path: ["fleet", "maxUnavailable"],
        message: `must be < fleet.minReplicas so a drain never takes every reader (got ${f.maxUnavailable} >= ${f.minReplicas})`,
      });
    if (f.public && f.publicSourceCidrs.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["fleet", "publicSourceCidrs"],
        message: "must list at least one CIDR when fleet.public is true (an open internet-facing database is never the default)",
      });
    if (c.cluster.mode === "new") {
      const n = c.cluster.nodes;
      if (n.maxSize < n.minSize)
        ctx.addIssue({ code: "custom", path: ["cluster", "nodes", "maxSize"], message: `must be >= cluster.nodes.minSize (got ${n.maxSize} < ${n.minSize})` });
      if (n.desiredSize !== undefined && (n.desiredSize < n.minSize || n.desiredSize > n.maxSize))
        ctx.addIssue({
          code: "custom",
          path: ["cluster", "nodes", "desiredSize"],
          message: `must be between cluster.nodes.minSize and cluster.nodes.maxSize (got ${n.desiredSize}, allowed ${n.minSize}..${n.maxSize})`,
        });
      if (c.cluster.endpointPublicAccess && c.cluster.publicAccessCidrs.length === 0)
        ctx.addIssue({
          code: "custom",
          path: ["cluster", "publicAccessCidrs"],
          message: "must list at least one CIDR when cluster.endpointPublicAccess is true",
        });
    }
    if (c.network === undefined && c.cluster.mode === "new")
      ctx.addIssue({ code: "custom", path: ["network"], message: "is required when cluster.mode is \"new\" (the VPC and private subnets for EKS and RDS)" });
    const m = c.master;
    if (m.mode === "create") {
      if (m.maxAllocatedStorageGiB !== 0 && m.maxAllocatedStorageGiB < m.allocatedStorageGiB)
        ctx.addIssue({
          code: "custom",
          path: ["master", "maxAllocatedStorageGiB"],
          message: `must be 0 (off) or >= master.allocatedStorageGiB (got ${m.maxAllocatedStorageGiB} < ${m.allocatedStorageGiB})`,
        });
      if (m.skipFinalSnapshot && m.deletionProtection === false && c.environment === "prod")
        ctx.addIssue({
          code: "custom",
          path: ["master", "skipFinalSnapshot"],
          message: "must be false in a prod environment while deletion protection is off (the data would be lost on destroy)",
        });
    }
    const s = c.snapshot;
    const overlap = s.includeTables.filter((t) => s.excludeTables.includes(t));
    if (overlap.length > 0)
      ctx.addIssue({
        code: "custom",
        path: ["snapshot", "excludeTables"],
        message: `must not repeat a pattern of snapshot.includeTables (got ${overlap.join(", ")})`,
      });
  });

export type StackConfig = z.infer<typeof StackConfigSchema>;
export type StackConfigInput = z.input<typeof StackConfigSchema>;
export type ClusterConfig = StackConfig["cluster"];
export type MasterConfig = StackConfig["master"];
export type FleetConfig = StackConfig["fleet"];
export type SnapshotConfig = StackConfig["snapshot"];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** One line per problem: `<key path> <what is wrong, what is allowed> (got <value>)`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const path = i.path.map(String).join(".") || "(root)";
    const input = (i as { input?: unknown }).input;
    if (i.code === "unrecognized_keys") return `${path === "(root)" ? "config" : path}: unknown key(s) ${i.keys.join(", ")}`;
    if (i.code === "invalid_union" && "options" in i && Array.isArray(i.options)) {
      const got = input && typeof input === "object" ? (input as Record<string, unknown>)[String(i.discriminator)] : undefined;
      return `${path} must be one of ${i.options.map((o) => JSON.stringify(o)).join(", ")} (got ${show(got)})`;
    }
    if (i.code === "invalid_type" && input === undefined) return `${path} is required (${i.expected})`;
    // Cross-field checks see the whole object as input: only show scalars and lists.
    const showable = input !== undefined && (typeof input !== "object" || input === null || Array.isArray(input));
    const got = showable && !i.message.includes("(got ") ? ` (got ${show(input)})` : "";
    return /^(must|is) /.test(i.message) ? `${path} ${i.message}${got}` : `${path}: ${i.message}${got}`;
  });
}

/** Validate raw stack config (as read from the stack file) and apply defaults; throws ConfigError. */
export function parseStackConfig(raw: unknown): StackConfig {
  const r = StackConfigSchema.safeParse(raw, { reportInput: true });
  if (!r.success) throw new ConfigError(formatIssues(r.error.issues));
  return r.data;
}

/** The top-level keys a stack may set under `container-native-db:` (a typo in one is an error, not a silent default). */
export const CONFIG_KEYS = Object.keys(StackConfigSchema.shape) as (keyof StackConfig)[];
