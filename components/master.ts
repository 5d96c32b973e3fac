import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { POSTGRES_MAJORS } from "./config";
import { ArgsError, checkCidrs, checkInt } from "./validate";

/** An existing PostgreSQL master to wrap (nothing is created). */
export interface ExistingMaster {
  host: pulumi.Input<string>;
  /** @default 5432 */
  port?: pulumi.Input<number>;
  databaseName: pulumi.Input<string>;
  /** Secrets Manager secret holding {"username","password"} (e.g. the RDS-managed master secret). */
  secretArn: pulumi.Input<string>;
  /** The customer-managed KMS key encrypting that secret. @default undefined (AWS-managed key) */
  kmsKeyArn?: pulumi.Input<string>;
}

export interface MasterDatabaseArgs {
  /** Wrap this master instead of creating one. @default undefined (create an RDS instance) */
  existing?: ExistingMaster;
  /** PostgreSQL major version of the master (and of the bake's pg_dump). @default 16 */
  engineMajorVersion?: number;
  /** VPC of the instance. Required unless `existing`. */
  vpcId?: pulumi.Input<string>;
  /** Private subnets in at least two AZs. Required unless `existing`. */
  subnetIds?: pulumi.Input<pulumi.Input<string>[]>;
  /** Security groups admitted on 5432 (the cluster's nodes). @default [] */
  allowedSecurityGroupIds?: pulumi.Input<string>[];
  /** CIDRs admitted on 5432. 0.0.0.0/0 is refused. @default [] */
  allowedCidrs?: string[];
  /** @default "db.t4g.medium" */
  instanceClass?: pulumi.Input<string>;
  /** @default 50 */
  allocatedStorageGiB?: number;
  /** Storage autoscaling ceiling; 0 turns it off. @default 200 */
  maxAllocatedStorageGiB?: number;
  /** @default "app" */
  databaseName?: string;
  /** @default "cndb_admin" */
  username?: string;
  /** @default false */
  multiAz?: boolean;
  /** @default false */
  performanceInsights?: boolean;
  /** Days of automated backups (1-35). @default 7 */
  backupRetentionDays?: number;
  /** @default true */
  deletionProtection?: boolean;
  /** @default false (a final snapshot is taken on delete) */
  skipFinalSnapshot?: boolean;
  /** Customer-managed key for storage, the master secret and Performance Insights. @default undefined (AWS-managed keys) */
  kmsKeyArn?: pulumi.Input<string>;
  /** Extra parameter-group parameters (applied at the next reboot). @default {} */
  parameters?: Record<string, string>;
  /** @default {} */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

export const DEFAULT_POSTGRES_MAJOR = 16;

/** Validates MasterDatabaseArgs before anything is created; throws ArgsError naming the field. */
export function validateMasterArgs(args: MasterDatabaseArgs): void {
  validateMasterSettings(args);
  if (args.existing) return;
  const where = "MasterDatabase";
  if (args.vpcId === undefined) throw new ArgsError(where, "vpcId", "is required when creating a master");
  if (args.subnetIds === undefined) throw new ArgsError(where, "subnetIds", "is required when creating a master");
  if ((args.allowedSecurityGroupIds ?? []).length === 0 && (args.allowedCidrs ?? []).length === 0)
    throw new ArgsError(where, "allowedSecurityGroupIds", "or allowedCidrs must admit at least one source (the bake must reach the master)");
}

/** The checks that need no wiring (network, admitted sources): run by ContainerNativeDatabase up front. */
export function validateMasterSettings(args: MasterDatabaseArgs): void {
  const where = "MasterDatabase";
  const major = args.engineMajorVersion ?? DEFAULT_POSTGRES_MAJOR;
  if (!(POSTGRES_MAJORS as readonly number[]).includes(major))
    throw new ArgsError(where, "engineMajorVersion", `must be one of ${POSTGRES_MAJORS.join(", ")} (got ${major})`);
  if (args.existing) {
    const extra = (["vpcId", "subnetIds", "instanceClass", "multiAz", "kmsKeyArn"] as const).filter((k) => args[k] !== undefined);
    if (extra.length > 0)
      throw new ArgsError(where, extra[0], "must not be set together with existing (an existing master is wrapped, nothing is created)");
    return;
  }
  checkCidrs(where, "allowedCidrs", args.allowedCidrs ?? []);
  const alloc = args.allocatedStorageGiB ?? 50;
  checkInt(where, "allocatedStorageGiB", alloc, 20, 65536);
  const max = args.maxAllocatedStorageGiB ?? 200;
  if (max !== 0 && max < alloc)
    throw new ArgsError(where, "maxAllocatedStorageGiB", `must be 0 (off) or >= allocatedStorageGiB (got ${max} < ${alloc})`);
  checkInt(where, "backupRetentionDays", args.backupRetentionDays ?? 7, 1, 35);
}

/**
 * The master PostgreSQL that takes all writes: RDS (private, encrypted, TLS-only, backed up, master
 * password managed by RDS in Secrets Manager), or a wrapper around an existing master.
 */
export class MasterDatabase extends pulumi.ComponentResource {
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** host:port */
  readonly endpoint: pulumi.Output<string>;
  readonly databaseName: pulumi.Output<string>;
  /** Secrets Manager secret holding {"username","password"}. */
  readonly secretArn: pulumi.Output<string>;
  readonly kmsKeyArn: pulumi.Output<string | undefined>;
  readonly engineMajorVersion: number;
  /** The instance's security group (undefined for an existing master). */
  readonly securityGroupId?: pulumi.Output<string>;
  readonly instance?: aws.rds.Instance;

  constructor(name: string, args: MasterDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("container-native-db:index:MasterDatabase", name, {}, opts);
    validateMasterArgs(args);
    this.engineMajorVersion = args.engineMajorVersion ?? DEFAULT_POSTGRES_MAJOR;

    if (args.existing) {
      const e = args.existing;
      this.host = pulumi.output(e.host);
      this.port = pulumi.output(e.port ?? 5432);
      this.databaseName = pulumi.output(e.databaseName);
      this.secretArn = pulumi.output(e.secretArn);
      this.kmsKeyArn = pulumi.output(e.kmsKeyArn);
    } else {
      const created = this.createInstance(name, args);
      this.instance = created.instance;
      this.securityGroupId = created.securityGroup.id;
      this.host = created.instance.address;
      this.port = created.instance.port;
      this.databaseName = created.instance.dbName;
      this.secretArn = created.instance.masterUserSecrets.apply((s) => {
        if (!s?.[0]?.secretArn) throw new Error(`${name}: RDS returned no master user secret (manageMasterUserPassword must be on)`);
        return s[0].secretArn;
      });
      this.kmsKeyArn = pulumi.output(args.kmsKeyArn);
    }
    this.endpoint = pulumi.interpolate`${this.host}:${this.port}`;
    this.registerOutputs({ host: this.host, port: this.port, endpoint: this.endpoint, secretArn: this.secretArn });
  }

  private createInstance(name: string, args: MasterDatabaseArgs) {
    const parent = { parent: this };
    const major = this.engineMajorVersion;
    const tags = args.tags ?? {};

    const subnets = new aws.rds.SubnetGroup(`${name}-subnets`, { subnetIds: args.subnetIds!, tags }, parent);
    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      { vpcId: args.vpcId!, description: "PostgreSQL master: 5432 from the read fleet's cluster only", tags },
      parent,
    );
    (args.allowedSecurityGroupIds ?? []).forEach((sg, i) => {
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-from-sg-${i}`,
        { securityGroupId: securityGroup.id, referencedSecurityGroupId: sg, ipProtocol: "tcp", fromPort: 5432, toPort: 5432, description: "PostgreSQL from cluster nodes" },
        parent,
      );
    });
    (args.allowedCidrs ?? []).forEach((cidr, i) => {
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-from-cidr-${i}`,
        { securityGroupId: securityGroup.id, cidrIpv4: cidr, ipProtocol: "tcp", fromPort: 5432, toPort: 5432, description: `PostgreSQL from ${cidr}` },
        parent,
      );
    });

    const parameters = { "rds.force_ssl": "1", ...(args.parameters ?? {}) };
    const parameterGroup = new aws.rds.ParameterGroup(
      `${name}-params`,
      {
        family: `postgres${major}`,
        description: `container-native-db master, PostgreSQL ${major}`,
        parameters: Object.entries(parameters).map(([pname, value]) => ({ name: pname, value, applyMethod: "pending-reboot" })),
        tags,
      },
      parent,
    );

    const maxAlloc = args.maxAllocatedStorageGiB ?? 200;
    const instance = new aws.rds.Instance(
      `${name}-db`,
      {
        engine: "postgres",
        engineVersion: String(major),
        autoMinorVersionUpgrade: true,
        instanceClass: args.instanceClass ?? "db.t4g.medium",
        allocatedStorage: args.allocatedStorageGiB ?? 50,
        maxAllocatedStorage: maxAlloc === 0 ? undefined : maxAlloc,
        storageType: "gp3",
        storageEncrypted: true,
        kmsKeyId: args.kmsKeyArn,
        dbName: args.databaseName ?? "app",
        username: args.username ?? "cndb_admin",
        manageMasterUserPassword: true,
        masterUserSecretKmsKeyId: args.kmsKeyArn,
        dbSubnetGroupName: subnets.name,
        vpcSecurityGroupIds: [securityGroup.id],
        parameterGroupName: parameterGroup.name,
        publiclyAccessible: false,
        multiAz: args.multiAz ?? false,
        backupRetentionPeriod: args.backupRetentionDays ?? 7,
        copyTagsToSnapshot: true,
        deletionProtection: args.deletionProtection ?? true,
        skipFinalSnapshot: args.skipFinalSnapshot ?? false,
        finalSnapshotIdentifier: args.skipFinalSnapshot ? undefined : `${name}-final`,
        performanceInsightsEnabled: args.performanceInsights ?? false,
        performanceInsightsKmsKeyId: args.performanceInsights ? args.kmsKeyArn : undefined,
        enabledCloudwatchLogsExports: ["postgresql"],
        tags,
      },
      parent,
    );
    return { instance, securityGroup };
  }
}
