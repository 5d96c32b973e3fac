/**
 * IAM policy documents as pure functions of plain ARNs (callers lift Outputs with `pulumi.all(...).apply`),
 * so least privilege is asserted in unit tests on the exact JSON AWS receives.
 */

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource?: string | string[];
  Principal?: Record<string, string | string[]>;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

/** Layer and manifest actions `cndb bake --push` needs on the one repository it pushes to. */
export const ECR_PUSH_ACTIONS = [
  "ecr:BatchCheckLayerAvailability",
  "ecr:BatchGetImage",
  "ecr:CompleteLayerUpload",
  "ecr:DescribeImages",
  "ecr:GetDownloadUrlForLayer",
  "ecr:InitiateLayerUpload",
  "ecr:PutImage",
  "ecr:UploadLayerPart",
];

/** Read-only access to the repository holding the base (tools) image the bake layers its data on. */
export const ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];

export interface BakePolicyInput {
  snapshotRepositoryArn: string;
  toolsRepositoryArn: string;
  masterSecretArn: string;
  /** Only when the master secret is encrypted with a customer-managed key. */
  kmsKeyArn?: string;
}

/** Permissions of the bake's IRSA role: push snapshots, pull the base image, read the master secret. */
export function bakePolicy(i: BakePolicyInput): PolicyDocument {
  const statements: PolicyStatement[] = [
    // AWS has no resource-level permission for this action: "*" is the only value it accepts.
    { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    { Sid: "PushSnapshotImages", Effect: "Allow", Action: ECR_PUSH_ACTIONS, Resource: i.snapshotRepositoryArn },
    { Sid: "PullBaseImage", Effect: "Allow", Action: ECR_PULL_ACTIONS, Resource: i.toolsRepositoryArn },
    { Sid: "ReadMasterSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: i.masterSecretArn },
  ];
  if (i.kmsKeyArn) {
    const region = arnRegion(i.masterSecretArn);
    statements.push({
      Sid: "DecryptMasterSecret",
      Effect: "Allow",
      Action: "kms:Decrypt",
      Resource: i.kmsKeyArn,
      // Only for decrypting through Secrets Manager, not for arbitrary use of the key.
      Condition: { StringEquals: { "kms:ViaService": `secretsmanager.${region}.amazonaws.com` } },
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

export interface IrsaTrustInput {
  oidcProviderArn: string;
  /** The issuer URL, with or without the leading https:// */
  oidcProviderUrl: string;
  namespace: string;
  serviceAccount: string;
}

/** Trust policy that lets exactly one Kubernetes ServiceAccount assume the role (IRSA). */
export function irsaTrustPolicy(i: IrsaTrustInput): PolicyDocument {
  const issuer = i.oidcProviderUrl.replace(/^https:\/\//, "");
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Federated: i.oidcProviderArn },
        Action: "sts:AssumeRoleWithWebIdentity",
        Condition: {
          StringEquals: {
            [`${issuer}:sub`]: `system:serviceaccount:${i.namespace}:${i.serviceAccount}`,
            [`${issuer}:aud`]: "sts.amazonaws.com",
          },
        },
      },
    ],
  };
}

/** Trust policy for EC2 instances of a managed node group. */
export function ec2TrustPolicy(): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
  };
}

/** AWS-managed policies every EKS managed node needs (join the cluster, pod networking, pull images from ECR). */
export const NODE_MANAGED_POLICIES = [
  "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
  "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
  "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
];

/** The region field of an ARN (arn:partition:service:region:account:resource). */
export function arnRegion(arn: string): string {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[0] !== "arn" || !parts[3]) throw new Error(`not a regional ARN: ${arn}`);
  return parts[3];
}
