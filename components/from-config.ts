import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "./config";
import type { ContainerNativeDatabaseArgs } from "./database";

/** Outputs read from a shared cluster stack (a StackReference), for `cluster.mode: shared`. */
export interface SharedClusterOutputs {
  kubeconfig: pulumi.Input<string>;
  oidcProviderArn: pulumi.Input<string>;
  oidcProviderUrl: pulumi.Input<string>;
  nodeSecurityGroupId: pulumi.Input<string>;
  vpcId: pulumi.Input<string>;
  privateSubnetIds: pulumi.Input<pulumi.Input<string>[]>;
}

/** Maps validated stack config to the component's args (pure; `index.ts` supplies the StackReference outputs). */
export function databaseArgsFromConfig(
  c: StackConfig,
  shared: SharedClusterOutputs | undefined,
  apiTokens: pulumi.Input<Record<string, pulumi.Input<string>>> | undefined,
): ContainerNativeDatabaseArgs {
  if (c.cluster.mode === "shared" && !shared) throw new Error("cluster.mode is \"shared\" but no shared cluster outputs were given");
  const network = c.network ?? (shared ? { vpcId: shared.vpcId, privateSubnetIds: shared.privateSubnetIds } : undefined);
  const cluster: ContainerNativeDatabaseArgs["cluster"] =
    c.cluster.mode === "new"
      ? {
          mode: "new",
          version: c.cluster.version,
          endpointPublicAccess: c.cluster.endpointPublicAccess,
          publicAccessCidrs: c.cluster.publicAccessCidrs,
          nodes: c.cluster.nodes,
        }
      : {
          mode: "kubeconfig",
          kubeconfig: shared!.kubeconfig,
          oidcProviderArn: shared!.oidcProviderArn,
          oidcProviderUrl: shared!.oidcProviderUrl,
          nodeSecurityGroupIds: [shared!.nodeSecurityGroupId],
        };
  const m = c.master;
  const master: ContainerNativeDatabaseArgs["master"] =
    m.mode === "existing"
      ? {
          engineMajorVersion: m.engineMajor,
          existing: { host: m.host, port: m.port, databaseName: m.databaseName, secretArn: m.secretArn, kmsKeyArn: m.kmsKeyArn },
        }
      : {
          engineMajorVersion: m.engineMajor,
          instanceClass: m.instanceClass,
          allocatedStorageGiB: m.allocatedStorageGiB,
          maxAllocatedStorageGiB: m.maxAllocatedStorageGiB,
          databaseName: m.databaseName,
          username: m.username,
          multiAz: m.multiAz,
          performanceInsights: m.performanceInsights,
          backupRetentionDays: m.backupRetentionDays,
          deletionProtection: m.deletionProtection,
          skipFinalSnapshot: m.skipFinalSnapshot,
          kmsKeyArn: m.kmsKeyArn,
          allowedCidrs: m.allowedCidrs,
          parameters: m.parameters,
        };
  const s = c.snapshot;
  const f = c.fleet;
  return {
    tenant: c.tenant,
    network,
    cluster,
    master,
    snapshot: {
      snapshotVersion: s.version,
      schedule: s.schedule,
      keepImages: s.keepImages,
      schemas: s.schemas,
      includeTables: s.includeTables,
      excludeTables: s.excludeTables,
      jobs: s.jobs,
      workVolumeSize: s.workVolumeSize,
      resources: { cpu: s.cpu, memory: s.memory },
      timeoutMinutes: s.timeoutMinutes,
      image: { postgresBaseImage: c.images.postgresBaseImage, kubectlVersion: c.images.kubectlVersion },
    },
    fleet: {
      minReplicas: f.minReplicas,
      maxReplicas: f.maxReplicas,
      targetCpuPercent: f.targetCpuPercent,
      reader: f.reader,
      api: f.api,
      ephemeralStorage: f.ephemeralStorage,
      warmup: f.warmup,
      public: f.public,
      publicSourceCidrs: f.publicSourceCidrs,
      allowedNamespaces: f.allowedNamespaces,
      maxUnavailable: f.maxUnavailable,
    },
    api: { config: c.api, tokens: apiTokens },
    tags: { "container-native-db/environment": c.environment, ...c.tags },
  };
}
