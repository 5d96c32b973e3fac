import path from "node:path";
import * as aws from "@pulumi/aws";
import * as dockerbuild from "@pulumi/docker-build";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { POSTGRES_MAJORS } from "./config";
import {
  BAKE_SCRIPT,
  BAKE_SCRIPT_DIR,
  BAKE_WORK_DIR,
  type BakeSpec,
  initialImageRef,
  initialSnapshotTag,
  READER_PASSWORD_ENV,
  renderBakeScript,
  SNAPSHOT_TAG_ENV,
} from "./bake-script";
import { arnRegion, bakePolicy, irsaTrustPolicy } from "./iam";
import { containerSecurityContext, labels, NAMES, podSecurityContext } from "./k8s-defaults";
import { missingContext, packageRoot, TOOLS_DOCKERFILE, toolsImageTag } from "./tools-image";
import { ArgsError, checkInt, checkQuantity } from "./validate";

/** The master the bake reads from. The password never appears here: the bake fetches the secret itself. */
export interface BakeSource {
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  databaseName: pulumi.Input<string>;
  /** Secrets Manager secret with {"username","password"}. */
  secretArn: pulumi.Input<string>;
  /** CMK encrypting that secret. @default undefined (AWS-managed key: no kms permission granted) */
  kmsKeyArn?: pulumi.Input<string | undefined>;
}

export interface SnapshotPipelineArgs {
  /** Tenant name, used in labels. */
  tenant: string;
  /** Namespace the bake runs in: the fleet's namespace (its Role can then name the Deployment). */
  namespace: pulumi.Input<string>;
  /** The Deployment the bake promotes new images to. @default "reader" */
  fleetDeployment?: string;
  /** Containers of that Deployment that run the snapshot image. @default ["reader", "api"] */
  fleetContainers?: string[];
  source: BakeSource;
  /** PostgreSQL major of the master; the tools image carries the same major's pg_dump. */
  postgresMajor: number;
  /** IRSA: the cluster's IAM OIDC provider ARN and issuer URL. */
  oidcProviderArn: pulumi.Input<string>;
  oidcProviderUrl: pulumi.Input<string>;
  /** Bumping it re-bakes on `pulumi up`: the initial Job's name and image tag derive from it. */
  snapshotVersion: string;
  /** Refresh CronJob schedule, or "off" for none. @default "0 *\/6 * * *" */
  schedule?: string;
  /** Snapshot images the ECR lifecycle policy keeps. @default 10 */
  keepImages?: number;
  /** @default [] (all schemas) */
  schemas?: string[];
  /** @default [] */
  includeTables?: string[];
  /** @default [] */
  excludeTables?: string[];
  /** Parallel pg_dump/pg_restore jobs. @default 4 */
  jobs?: number;
  /** emptyDir size for dump + PGDATA. @default "20Gi" */
  workVolumeSize?: string;
  /** @default { cpu: "1", memory: "2Gi" } */
  resources?: { cpu: string; memory: string };
  /** Deadline of one bake. @default 120 */
  timeoutMinutes?: number;
  /** Tools image build settings. */
  image?: {
    /** @default "postgres:<postgresMajor>-bookworm" (pin by digest in production) */
    postgresBaseImage?: string;
    /** @default "1.33.4" */
    kubectlVersion?: string;
    /** @default "linux/amd64" */
    platform?: "linux/amd64" | "linux/arm64";
    /** Build context: a package root with the run-time sources (the image compiles them). @default this package's root */
    contextDir?: string;
  };
  /** @default {} */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

export const DEFAULT_SCHEDULE = "0 */6 * * *";

/** The plain fields a pipeline is validated on (ContainerNativeDatabase checks them before wiring). */
export type PipelineSettings = Omit<SnapshotPipelineArgs, "namespace" | "source" | "oidcProviderArn" | "oidcProviderUrl" | "tenant">;

export function validatePipelineArgs(args: PipelineSettings): void {
  const where = "SnapshotPipeline";
  if (!(POSTGRES_MAJORS as readonly number[]).includes(args.postgresMajor))
    throw new ArgsError(where, "postgresMajor", `must be one of ${POSTGRES_MAJORS.join(", ")} (got ${args.postgresMajor})`);
  if (!/^[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?$/.test(args.snapshotVersion))
    throw new ArgsError(where, "snapshotVersion", `must be 1-32 characters of a-z, 0-9, "." and "-" (got "${args.snapshotVersion}")`);
  const sched = args.schedule ?? DEFAULT_SCHEDULE;
  if (sched !== "off" && !/^(@\w+|(\S+\s+){4}\S+)$/.test(sched.trim()))
    throw new ArgsError(where, "schedule", `must be a 5-field cron expression, an @-macro or "off" (got "${sched}")`);
  checkInt(where, "keepImages", args.keepImages ?? 10, 2, 1000);
  checkInt(where, "jobs", args.jobs ?? 4, 1, 64);
  checkInt(where, "timeoutMinutes", args.timeoutMinutes ?? 120, 5, 24 * 60);
  checkQuantity(where, "workVolumeSize", args.workVolumeSize ?? "20Gi");
  if (args.resources) {
    checkQuantity(where, "resources.cpu", args.resources.cpu);
    checkQuantity(where, "resources.memory", args.resources.memory);
  }
  if ((args.fleetContainers ?? ["x"]).length === 0) throw new ArgsError(where, "fleetContainers", "must name at least one container");
  const platform = args.image?.platform ?? "linux/amd64";
  if (platform !== "linux/amd64" && platform !== "linux/arm64")
    throw new ArgsError(where, "image.platform", `must be "linux/amd64" or "linux/arm64" (got "${platform}")`);
}

/** ECR lifecycle: untagged layers go after a day, and only the newest `keep` images stay. */
export function lifecyclePolicy(keep: number): string {
  return JSON.stringify({
    rules: [
      {
        rulePriority: 1,
        description: "Expire untagged images after 1 day",
        selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
        action: { type: "expire" },
      },
      {
        rulePriority: 2,
        description: `Keep the last ${keep} images`,
        selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: keep },
        action: { type: "expire" },
      },
    ],
  });
}

/**
 * Turns the master into snapshot images: ECR repositories, the tools image, the bake's IRSA role and
 * RBAC, the bake spec, an initial bake Job (re-run when snapshot.version changes) and a refresh CronJob.
 */
export class SnapshotPipeline extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly toolsImageRef: pulumi.Output<string>;
  /** The image the initial Job pushes; it depends on the Job, so a Deployment using it waits for the bake. */
  readonly initialImage: pulumi.Output<string>;
  readonly readerPassword: pulumi.Output<string>;
  readonly readerPasswordSecretName: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;
  readonly initialJob: k8s.batch.v1.Job;
  readonly cronJob?: k8s.batch.v1.CronJob;

  constructor(name: string, args: SnapshotPipelineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("container-native-db:index:SnapshotPipeline", name, {}, opts);
    validatePipelineArgs(args);
    // The tools image compiles the run-time from this directory: check it before creating anything.
    const contextDir = args.image?.contextDir ?? packageRoot(__dirname);
    const missing = missingContext(contextDir);
    if (missing.length > 0)
      throw new ArgsError("SnapshotPipeline", "image.contextDir", `must be a package root with the run-time sources the image compiles (${contextDir} has no ${missing.join(", ")})`);
    const parent = { parent: this };
    const tags = args.tags ?? {};
    const deployment = args.fleetDeployment ?? NAMES.deployment;
    const containers = args.fleetContainers ?? [NAMES.readerContainer, NAMES.apiContainer];

    // Repositories: snapshots (kept N deep) and the tools image they are layered on.
    const snapshots = this.repository(`${name}-snapshots`, "IMMUTABLE", args.keepImages ?? 10, args.source.kmsKeyArn, tags);
    // MUTABLE on purpose: the tag is a content hash, and a rebuild of unchanged content (BuildKit output
    // isn't bit-reproducible) must be able to re-push it. Snapshot images, the data, stay IMMUTABLE.
    const tools = this.repository(`${name}-tools`, "MUTABLE", 5, args.source.kmsKeyArn, tags);
    this.repositoryUrl = snapshots.repositoryUrl;

    // Tools image: PostgreSQL <major> + Node 20 + cndb + kubectl, tagged by content.
    const buildArgs: Record<string, string> = {
      PG_MAJOR: String(args.postgresMajor),
      BASE_IMAGE: args.image?.postgresBaseImage ?? `postgres:${args.postgresMajor}-bookworm`,
      KUBECTL_VERSION: args.image?.kubectlVersion ?? "1.33.4",
    };
    const toolsTag = toolsImageTag(contextDir, buildArgs);
    const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: tools.registryId }, parent);
    const toolsImage = new dockerbuild.Image(
      `${name}-tools`,
      {
        context: { location: contextDir },
        dockerfile: { location: path.join(contextDir, TOOLS_DOCKERFILE) },
        platforms: [args.image?.platform ?? "linux/amd64"],
        buildArgs,
        push: true,
        tags: [pulumi.interpolate`${tools.repositoryUrl}:${toolsTag}`],
        registries: [{ address: tools.repositoryUrl, username: auth.userName, password: pulumi.secret(auth.password) }],
      },
      parent,
    );
    // By tag, not digest: a rebuild of the same content must not change the Job (and re-push a snapshot tag).
    const toolsRef = pulumi.all([tools.repositoryUrl, toolsImage.ref]).apply(([repo]) => `${repo}:${toolsTag}`);
    this.toolsImageRef = toolsRef;

    // IRSA role: only the bake ServiceAccount may assume it; it may push here, pull the base, read the secret.
    const role = new aws.iam.Role(
      `${name}-bake`,
      {
        description: "container-native-db bake: push snapshot images, read the master secret",
        assumeRolePolicy: pulumi
          .all([args.oidcProviderArn, args.oidcProviderUrl, args.namespace])
          .apply(([arn, url, ns]) =>
            JSON.stringify(irsaTrustPolicy({ oidcProviderArn: arn, oidcProviderUrl: url, namespace: ns, serviceAccount: NAMES.bakeServiceAccount })),
          ),
        tags,
      },
      parent,
    );
    const policy = new aws.iam.RolePolicy(
      `${name}-bake`,
      {
        role: role.id,
        policy: pulumi
          .all([snapshots.arn, tools.arn, args.source.secretArn, args.source.kmsKeyArn])
          .apply(([snap, tl, secret, kms]) =>
            JSON.stringify(bakePolicy({ snapshotRepositoryArn: snap, toolsRepositoryArn: tl, masterSecretArn: secret, kmsKeyArn: kms })),
          ),
      },
      parent,
    );
    this.roleArn = role.arn;

    const meta = (objName: string) => ({ name: objName, namespace: args.namespace, labels: labels(args.tenant, "bake") });
    const sa = new k8s.core.v1.ServiceAccount(
      `${name}-bake`,
      {
        metadata: { ...meta(NAMES.bakeServiceAccount), annotations: { "eks.amazonaws.com/role-arn": role.arn } },
        // kubectl needs the token to promote; the bake is the only pod of this package that gets one.
        automountServiceAccountToken: true,
      },
      parent,
    );
    const rbacRole = new k8s.rbac.v1.Role(
      `${name}-promote`,
      {
        metadata: meta(NAMES.bakeRole),
        rules: [{ apiGroups: ["apps"], resources: ["deployments"], resourceNames: [deployment], verbs: ["get", "patch"] }],
      },
      parent,
    );
    const binding = new k8s.rbac.v1.RoleBinding(
      `${name}-promote`,
      {
        metadata: meta(NAMES.bakeRole),
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: rbacRole.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: args.namespace }],
      },
      parent,
    );

    // The reader role's password: baked into the image (as a hash) and used by the API sidecar.
    const password = new random.RandomPassword(`${name}-reader`, { length: 32, special: false }, parent);
    this.readerPassword = pulumi.secret(password.result);
    const passwordSecret = new k8s.core.v1.Secret(
      `${name}-reader-password`,
      { metadata: meta(NAMES.readerPassword), type: "Opaque", stringData: { password: password.result } },
      parent,
    );
    this.readerPasswordSecretName = passwordSecret.metadata.name;

    const spec = pulumi
      .all([args.source.host, args.source.port, args.source.databaseName, args.source.secretArn, toolsRef, snapshots.repositoryUrl, args.namespace])
      .apply(
        ([host, port, db, secretArn, baseImage, repo, ns]): BakeSpec => ({
          sourceUrl: `postgres://${host}:${port}/${encodeURIComponent(db)}?sslmode=require`,
          sourceSecretArn: secretArn,
          baseImage,
          repositoryUrl: repo,
          namespace: ns,
          deployment,
          containers,
          jobs: args.jobs ?? 4,
          schemas: args.schemas ?? [],
          includeTables: args.includeTables ?? [],
          excludeTables: args.excludeTables ?? [],
        }),
      );
    const specMap = new k8s.core.v1.ConfigMap(
      `${name}-spec`,
      {
        metadata: meta(NAMES.bakeSpec),
        data: {
          "bake.sh": spec.apply((s) => renderBakeScript(s)),
          "spec.json": spec.apply((s) => JSON.stringify(s, null, 2)),
        },
      },
      parent,
    );

    const region = pulumi.output(args.source.secretArn).apply(arnRegion);
    const podSpec = (tag: string | undefined): k8s.types.input.core.v1.PodSpec => ({
      serviceAccountName: sa.metadata.name,
      automountServiceAccountToken: true,
      restartPolicy: "Never",
      enableServiceLinks: false,
      securityContext: podSecurityContext(),
      containers: [
        {
          name: "bake",
          image: toolsRef,
          command: ["/bin/bash", BAKE_SCRIPT],
          env: [
            ...(tag ? [{ name: SNAPSHOT_TAG_ENV, value: tag }] : []),
            { name: READER_PASSWORD_ENV, valueFrom: { secretKeyRef: { name: passwordSecret.metadata.name, key: "password" } } },
            { name: "AWS_REGION", value: region },
            { name: "AWS_STS_REGIONAL_ENDPOINTS", value: "regional" },
            { name: "HOME", value: "/tmp" },
          ],
          resources: {
            requests: { cpu: args.resources?.cpu ?? "1", memory: args.resources?.memory ?? "2Gi" },
            limits: { memory: args.resources?.memory ?? "2Gi" },
          },
          securityContext: containerSecurityContext(true),
          volumeMounts: [
            { name: "work", mountPath: BAKE_WORK_DIR },
            { name: "tmp", mountPath: "/tmp" },
            { name: "spec", mountPath: BAKE_SCRIPT_DIR, readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: "work", emptyDir: { sizeLimit: args.workVolumeSize ?? "20Gi" } },
        { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
        { name: "spec", configMap: { name: specMap.metadata.name, defaultMode: 0o444 } },
      ],
    });
    const deadline = (args.timeoutMinutes ?? 120) * 60;
    const after = { parent: this, dependsOn: [policy, binding, passwordSecret, specMap] };

    // The initial bake. Its name carries the version and tools tag: a change replaces (re-runs) it.
    const tag = initialSnapshotTag(args.snapshotVersion, toolsTag);
    this.initialJob = new k8s.batch.v1.Job(
      `${name}-initial`,
      {
        metadata: { ...meta(`bake-${tag}`), annotations: { "container-native-db/snapshot-version": args.snapshotVersion } },
        spec: {
          backoffLimit: 1,
          activeDeadlineSeconds: deadline,
          template: { metadata: { labels: labels(args.tenant, "bake") }, spec: podSpec(tag) },
        },
      },
      { ...after, deleteBeforeReplace: true, customTimeouts: { create: `${args.timeoutMinutes ?? 120}m`, update: `${args.timeoutMinutes ?? 120}m` } },
    );
    // Derived from the Job's name so that anything using it waits for the Job (and so for the push).
    this.initialImage = pulumi
      .all([snapshots.repositoryUrl, this.initialJob.metadata.name])
      .apply(([repo]) => initialImageRef(repo, tag));

    const schedule = args.schedule ?? DEFAULT_SCHEDULE;
    if (schedule !== "off") {
      this.cronJob = new k8s.batch.v1.CronJob(
        `${name}-refresh`,
        {
          metadata: meta(NAMES.cronJob),
          spec: {
            schedule,
            timeZone: "Etc/UTC",
            concurrencyPolicy: "Forbid",
            startingDeadlineSeconds: 600,
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
            jobTemplate: {
              spec: {
                backoffLimit: 1,
                activeDeadlineSeconds: deadline,
                template: { metadata: { labels: labels(args.tenant, "bake") }, spec: podSpec(undefined) },
              },
            },
          },
        },
        // Scheduled bakes start only after the initial image exists.
        { ...after, dependsOn: [...after.dependsOn, this.initialJob] },
      );
    }

    this.registerOutputs({
      repositoryUrl: this.repositoryUrl,
      toolsImageRef: this.toolsImageRef,
      initialImage: this.initialImage,
      roleArn: this.roleArn,
    });
  }

  private repository(
    name: string,
    imageTagMutability: "IMMUTABLE" | "MUTABLE",
    keep: number,
    kmsKeyArn: pulumi.Input<string | undefined> | undefined,
    tags: pulumi.Input<Record<string, pulumi.Input<string>>>,
  ): aws.ecr.Repository {
    const repo = new aws.ecr.Repository(
      name,
      {
        imageTagMutability,
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: kmsKeyArn }],
        tags,
      },
      { parent: this },
    );
    new aws.ecr.LifecyclePolicy(name, { repository: repo.name, policy: lifecyclePolicy(keep) }, { parent: this });
    return repo;
  }
}
