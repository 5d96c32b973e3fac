import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { type ClusterAccess, type ClusterArgs, createEksCluster, validateClusterArgs } from "./cluster";
import { type ReadFleetArgs, ReadFleet, validateFleetArgs } from "./fleet";
import { NAMES } from "./k8s-defaults";
import { MasterDatabase, type MasterDatabaseArgs, validateMasterSettings } from "./master";
import { SnapshotPipeline, type SnapshotPipelineArgs, validatePipelineArgs } from "./pipeline";
import { ArgsError, checkDnsLabel } from "./validate";

/** Master settings; the network and the admitted security groups come from the database's own args. */
export type MasterSettings = Omit<MasterDatabaseArgs, "vpcId" | "subnetIds" | "allowedSecurityGroupIds" | "tags">;

/** Snapshot settings; the source, namespace, OIDC and PostgreSQL major are wired in. */
export type SnapshotSettings = Omit<
  SnapshotPipelineArgs,
  "tenant" | "namespace" | "source" | "postgresMajor" | "oidcProviderArn" | "oidcProviderUrl" | "fleetDeployment" | "fleetContainers" | "tags"
>;

/** Fleet settings; the image and the reader password are wired in. */
export type FleetSettings = Omit<ReadFleetArgs, "tenant" | "image" | "readerPasswordSecretName" | "databaseName" | "apiConfig" | "apiTokens">;

export interface ContainerNativeDatabaseArgs {
  /** Tenant name (namespace `cndb-<tenant>`). */
  tenant: string;
  /** VPC and private subnets. Required to create a master or a cluster. @default undefined */
  network?: { vpcId: pulumi.Input<string>; privateSubnetIds: pulumi.Input<pulumi.Input<string>[]> };
  /** Cluster access: a new EKS cluster, a kubeconfig, or the kubernetes provider in `providers`. */
  cluster: ClusterArgs;
  /** @default {} (a new RDS PostgreSQL 16 master with secure defaults) */
  master?: MasterSettings;
  snapshot: SnapshotSettings;
  /** @default {} */
  fleet?: FleetSettings;
  /** The read API's settings (api.json) and bearer tokens by name (a Secret), see ReadFleetArgs. @default {} */
  api?: { config?: Record<string, unknown>; tokens?: pulumi.Input<Record<string, pulumi.Input<string>>> };
  /** Tags on every AWS resource. @default {} */
  tags?: Record<string, string>;
}

export function validateDatabaseArgs(args: ContainerNativeDatabaseArgs, k8sProviderPassed: boolean): void {
  const where = "ContainerNativeDatabase";
  checkDnsLabel(where, "tenant", args.tenant, 40);
  validateClusterArgs(where, args.cluster);
  if (args.cluster.mode === "provider" && !k8sProviderPassed)
    throw new ArgsError(where, "cluster.mode", '"provider" needs a kubernetes provider in the providers option ({ providers: { kubernetes: ... } })');
  if (args.cluster.mode !== "provider" && k8sProviderPassed)
    throw new ArgsError(where, "cluster.mode", `"${args.cluster.mode}" builds its own kubernetes provider; don't also pass one in providers`);
  const creatingMaster = !args.master?.existing;
  if (!args.network && (creatingMaster || args.cluster.mode === "new"))
    throw new ArgsError(where, "network", "is required to create a master or a cluster (vpcId and privateSubnetIds)");
  const master = args.master ?? {};
  if (creatingMaster) {
    const hasSources = args.cluster.mode === "new" || (args.cluster.nodeSecurityGroupIds ?? []).length > 0 || (master.allowedCidrs ?? []).length > 0;
    if (!hasSources)
      throw new ArgsError(where, "cluster.nodeSecurityGroupIds", "or master.allowedCidrs must admit the cluster's nodes to the master (the bake runs there)");
  }
}

/**
 * container-native-db for one tenant: a master that takes writes, a pipeline that bakes it into images,
 * and a read-only fleet serving those images. The one component users import.
 */
export class ContainerNativeDatabase extends pulumi.ComponentResource {
  readonly masterEndpoint: pulumi.Output<string>;
  readonly masterSecretArn: pulumi.Output<string>;
  readonly snapshotRepositoryUrl: pulumi.Output<string>;
  readonly currentSnapshotImage: pulumi.Output<string>;
  readonly readApiUrl: pulumi.Output<string>;
  readonly readOnlyPostgresEndpoint: pulumi.Output<string>;
  readonly namespace: pulumi.Output<string>;
  readonly readerPassword: pulumi.Output<string>;
  /** Set when this component created the cluster. */
  readonly kubeconfig?: pulumi.Output<string>;
  readonly master: MasterDatabase;
  readonly pipeline: SnapshotPipeline;
  readonly fleet: ReadFleet;

  constructor(name: string, args: ContainerNativeDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("container-native-db:index:ContainerNativeDatabase", name, {}, opts);
    validateDatabaseArgs(args, this.getProvider("kubernetes::") !== undefined);
    const masterSettings = args.master ?? {};
    const tags = { "container-native-db/tenant": args.tenant, ...(args.tags ?? {}) };

    // Validate every part before the first child exists.
    const major = masterSettings.engineMajorVersion ?? 16;
    validateMasterSettings(masterSettings);
    validatePipelineArgs({ ...args.snapshot, postgresMajor: major });
    validateFleetArgs({ ...(args.fleet ?? {}), tenant: args.tenant, apiConfig: args.api?.config, apiTokens: args.api?.tokens });

    const access = this.clusterAccess(name, args, tags);
    this.kubeconfig = access.kubeconfig;
    const k8sOpts: pulumi.ComponentResourceOptions = { parent: this, ...(access.provider ? { providers: [access.provider] } : {}) };

    this.master = new MasterDatabase(
      `${name}-master`,
      {
        ...masterSettings,
        ...(masterSettings.existing
          ? {}
          : {
              vpcId: args.network!.vpcId,
              subnetIds: args.network!.privateSubnetIds,
              allowedSecurityGroupIds: access.nodeSecurityGroupIds,
              tags,
            }),
      },
      { parent: this },
    );

    // The fleet's Deployment must wait for the initial bake, and the bake runs in the fleet's namespace:
    // the image is a deferred output, resolved from the pipeline (carrying its dependency on the Job).
    const [image, resolveImage] = pulumi.deferredOutput<string>();
    this.fleet = new ReadFleet(
      `${name}-fleet`,
      {
        ...(args.fleet ?? {}),
        tenant: args.tenant,
        image,
        readerPasswordSecretName: NAMES.readerPassword,
        databaseName: this.master.databaseName,
        apiConfig: args.api?.config,
        apiTokens: args.api?.tokens,
      },
      k8sOpts,
    );
    this.pipeline = new SnapshotPipeline(
      `${name}-snapshot`,
      {
        ...args.snapshot,
        tenant: args.tenant,
        namespace: this.fleet.namespace,
        source: {
          host: this.master.host,
          port: this.master.port,
          databaseName: this.master.databaseName,
          secretArn: this.master.secretArn,
          kmsKeyArn: this.master.kmsKeyArn,
        },
        postgresMajor: this.master.engineMajorVersion,
        oidcProviderArn: access.oidcProviderArn,
        oidcProviderUrl: access.oidcProviderUrl,
        image: { platform: access.architecture === "arm64" ? "linux/arm64" : "linux/amd64", ...(args.snapshot.image ?? {}) },
        tags,
      },
      k8sOpts,
    );
    resolveImage(this.pipeline.initialImage);

    this.masterEndpoint = this.master.endpoint;
    this.masterSecretArn = this.master.secretArn;
    this.snapshotRepositoryUrl = this.pipeline.repositoryUrl;
    this.currentSnapshotImage = this.fleet.currentImage;
    this.readApiUrl = this.fleet.apiUrl;
    this.readOnlyPostgresEndpoint = this.fleet.postgresEndpoint;
    this.namespace = this.fleet.namespace;
    this.readerPassword = this.pipeline.readerPassword;
    this.registerOutputs({
      masterEndpoint: this.masterEndpoint,
      snapshotRepositoryUrl: this.snapshotRepositoryUrl,
      currentSnapshotImage: this.currentSnapshotImage,
      readApiUrl: this.readApiUrl,
      readOnlyPostgresEndpoint: this.readOnlyPostgresEndpoint,
      namespace: this.namespace,
    });
  }

  private clusterAccess(name: string, args: ContainerNativeDatabaseArgs, tags: Record<string, string>): ClusterAccess {
    const c = args.cluster;
    if (c.mode === "new") return createEksCluster(name, c, args.network!, tags, this);
    const common = {
      oidcProviderArn: c.oidcProviderArn,
      oidcProviderUrl: c.oidcProviderUrl,
      nodeSecurityGroupIds: c.nodeSecurityGroupIds ?? [],
      architecture: "x86_64" as const,
    };
    if (c.mode === "provider") return common;
    const provider = new k8s.Provider(`${name}-k8s`, { kubeconfig: pulumi.secret(c.kubeconfig!), enableServerSideApply: true }, { parent: this });
    return { ...common, provider };
  }
}
