import * as aws from "@pulumi/aws";
import * as eks from "@pulumi/eks";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ec2TrustPolicy, NODE_MANAGED_POLICIES } from "./iam";
import { ArgsError, checkCidrs, checkInt } from "./validate";

/** Node AMI family of a new EKS node group; see docs/deploy.md for why bottlerocket is the default. */
export type NodeAmiFamily = "bottlerocket" | "al2023";

export interface NewClusterArgs {
  mode: "new";
  /** @default "1.33" */
  version?: string;
  /** Public API endpoint (private access is always on). @default false */
  endpointPublicAccess?: boolean;
  /** Required when endpointPublicAccess. @default [] */
  publicAccessCidrs?: string[];
  nodes?: {
    /** @default "bottlerocket" (containerd's storage on XFS) */
    amiFamily?: NodeAmiFamily;
    /** @default "x86_64" */
    architecture?: "x86_64" | "arm64";
    /** @default ["m7i.large"] */
    instanceTypes?: string[];
    /** @default 2 */
    minSize?: number;
    /** @default 6 */
    maxSize?: number;
    /** @default minSize */
    desiredSize?: number;
    /** Volume holding container images and writable layers. @default 100 */
    diskSizeGiB?: number;
  };
}

/** Cluster access when the caller already has a cluster. */
export interface ExistingClusterArgs {
  /** "provider": the kubernetes provider comes from the component's `providers` option; "kubeconfig": built here. */
  mode: "provider" | "kubeconfig";
  /** Required for mode "kubeconfig". */
  kubeconfig?: pulumi.Input<string>;
  /** IAM OIDC provider of the cluster (IRSA for the bake). */
  oidcProviderArn: pulumi.Input<string>;
  oidcProviderUrl: pulumi.Input<string>;
  /** Security groups of the nodes the fleet and the bake run on (admitted by the master). @default [] */
  nodeSecurityGroupIds?: pulumi.Input<string>[];
}

export type ClusterArgs = NewClusterArgs | ExistingClusterArgs;

/** What the rest of the package needs from a cluster. */
export interface ClusterAccess {
  provider?: k8s.Provider;
  oidcProviderArn: pulumi.Input<string>;
  oidcProviderUrl: pulumi.Input<string>;
  nodeSecurityGroupIds: pulumi.Input<string>[];
  kubeconfig?: pulumi.Output<string>;
  architecture: "x86_64" | "arm64";
}

export function amiType(family: NodeAmiFamily, arch: "x86_64" | "arm64"): string {
  if (family === "bottlerocket") return arch === "arm64" ? "BOTTLEROCKET_ARM_64" : "BOTTLEROCKET_x86_64";
  return arch === "arm64" ? "AL2023_ARM_64_STANDARD" : "AL2023_x86_64_STANDARD";
}

/**
 * Encrypted gp3 volumes. Bottlerocket keeps the OS on /dev/xvda and everything else (containerd, the
 * readers' writable layers) on the data volume /dev/xvdb; AL2023 has one root volume.
 */
export function nodeBlockDevices(family: NodeAmiFamily, diskSizeGiB: number): aws.types.input.ec2.LaunchTemplateBlockDeviceMapping[] {
  const ebs = (size: number) => ({ volumeSize: size, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" });
  return family === "bottlerocket"
    ? [
        { deviceName: "/dev/xvda", ebs: ebs(4) },
        { deviceName: "/dev/xvdb", ebs: ebs(diskSizeGiB) },
      ]
    : [{ deviceName: "/dev/xvda", ebs: ebs(diskSizeGiB) }];
}

export function validateClusterArgs(where: string, c: ClusterArgs): void {
  if (c.mode === "new") {
    if (c.endpointPublicAccess && (c.publicAccessCidrs ?? []).length === 0)
      throw new ArgsError(where, "cluster.publicAccessCidrs", "must list at least one CIDR when cluster.endpointPublicAccess is true");
    checkCidrs(where, "cluster.publicAccessCidrs", c.publicAccessCidrs ?? []);
    const n = c.nodes ?? {};
    const family = n.amiFamily ?? "bottlerocket";
    if (family !== "bottlerocket" && family !== "al2023")
      throw new ArgsError(where, "cluster.nodes.amiFamily", `must be "bottlerocket" or "al2023" (got "${family}")`);
    const min = n.minSize ?? 2;
    const max = n.maxSize ?? 6;
    checkInt(where, "cluster.nodes.minSize", min, 1, 1000);
    checkInt(where, "cluster.nodes.maxSize", max, 1, 1000);
    if (max < min) throw new ArgsError(where, "cluster.nodes.maxSize", `must be >= cluster.nodes.minSize (got ${max} < ${min})`);
    const desired = n.desiredSize ?? min;
    if (desired < min || desired > max)
      throw new ArgsError(where, "cluster.nodes.desiredSize", `must be between minSize and maxSize (got ${desired}, allowed ${min}..${max})`);
    checkInt(where, "cluster.nodes.diskSizeGiB", n.diskSizeGiB ?? 100, 20, 16384);
    if ((n.instanceTypes ?? ["m7i.large"]).length === 0) throw new ArgsError(where, "cluster.nodes.instanceTypes", "must list at least one instance type");
    return;
  }
  if (c.mode === "kubeconfig" && c.kubeconfig === undefined) throw new ArgsError(where, "cluster.kubeconfig", 'is required when cluster.mode is "kubeconfig"');
  if (c.mode !== "kubeconfig" && c.mode !== "provider")
    throw new ArgsError(where, "cluster.mode", `must be "new", "kubeconfig" or "provider" (got "${(c as { mode: string }).mode}")`);
}

/**
 * A new EKS cluster (private endpoint, IRSA, access entries, control-plane logs) with one managed node
 * group that the cluster autoscaler may resize (Pulumi ignores its scaling changes).
 */
export function createEksCluster(
  name: string,
  c: NewClusterArgs,
  network: { vpcId: pulumi.Input<string>; privateSubnetIds: pulumi.Input<pulumi.Input<string>[]> },
  tags: pulumi.Input<Record<string, pulumi.Input<string>>>,
  parent: pulumi.Resource,
): ClusterAccess {
  const n = c.nodes ?? {};
  const family = n.amiFamily ?? "bottlerocket";
  const arch = n.architecture ?? "x86_64";
  const opts = { parent };

  const cluster = new eks.Cluster(
    `${name}-eks`,
    {
      vpcId: network.vpcId,
      privateSubnetIds: network.privateSubnetIds,
      version: c.version ?? "1.33",
      skipDefaultNodeGroup: true,
      createOidcProvider: true,
      authenticationMode: "API",
      endpointPrivateAccess: true,
      endpointPublicAccess: c.endpointPublicAccess ?? false,
      publicAccessCidrs: c.endpointPublicAccess ? c.publicAccessCidrs : undefined,
      enabledClusterLogTypes: ["api", "audit", "authenticator"],
      // The fleet's NetworkPolicy is only enforced when the VPC CNI runs its network policy agent.
      vpcCniOptions: { enableNetworkPolicy: true },
      tags,
    },
    opts,
  );

  const nodeRole = new aws.iam.Role(`${name}-node`, { assumeRolePolicy: JSON.stringify(ec2TrustPolicy()), tags }, opts);
  NODE_MANAGED_POLICIES.forEach((policyArn, i) => {
    new aws.iam.RolePolicyAttachment(`${name}-node-${i}`, { role: nodeRole.name, policyArn }, opts);
  });

  const launchTemplate = new aws.ec2.LaunchTemplate(
    `${name}-nodes`,
    {
      blockDeviceMappings: nodeBlockDevices(family, n.diskSizeGiB ?? 100),
      // IMDSv2 only, one hop: pods cannot borrow the node's role (the bake uses IRSA).
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      tagSpecifications: [{ resourceType: "instance", tags }],
      tags,
    },
    opts,
  );

  const min = n.minSize ?? 2;
  new eks.ManagedNodeGroup(
    `${name}-nodes`,
    {
      cluster,
      nodeRole,
      amiType: amiType(family, arch),
      instanceTypes: n.instanceTypes ?? ["m7i.large"],
      subnetIds: network.privateSubnetIds,
      scalingConfig: { minSize: min, maxSize: n.maxSize ?? 6, desiredSize: n.desiredSize ?? min },
      ignoreScalingChanges: true,
      launchTemplate: { id: launchTemplate.id, version: launchTemplate.latestVersion.apply(String) },
      labels: { "container-native-db/ami-family": family },
      tags,
    },
    opts,
  );

  const kubeconfig = pulumi.secret(cluster.kubeconfigJson);
  const provider = new k8s.Provider(`${name}-k8s`, { kubeconfig, enableServerSideApply: true }, opts);
  // Managed nodes use the EKS-created cluster security group.
  const clusterSg = cluster.eksCluster.apply((e) => e.vpcConfig.clusterSecurityGroupId);
  return {
    provider,
    oidcProviderArn: cluster.oidcProviderArn,
    oidcProviderUrl: cluster.oidcProviderUrl,
    nodeSecurityGroupIds: [clusterSg],
    kubeconfig,
    architecture: arch,
  };
}
