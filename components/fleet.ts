import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { API_PORT, IMAGE_SNAPSHOT_DIR, READER_PORT, READER_ROLE, READY_FILE, SOCKET_DIR } from "../common/contract";
import { API_CONFIG_DIR, API_CONFIG_FILE, API_TOKENS_DIR, renderApiConfig } from "./api-settings";
import {
  containerSecurityContext,
  labels,
  NAMES,
  namespaceName,
  POD_SECURITY_LABELS,
  podSecurityContext,
  selectorLabels,
} from "./k8s-defaults";
import { ArgsError, checkCidrs, checkDnsLabel, checkInt, checkQuantity } from "./validate";

export interface ContainerResources {
  /** CPU request (no CPU limit: throttling a database hurts tail latency more than it protects). */
  cpu: string;
  /** Memory request and limit. */
  memory: string;
}

export interface ReadFleetArgs {
  /** Tenant name: the namespace is `cndb-<tenant>`. */
  tenant: string;
  /** The snapshot image both containers run. Promotions by the bake CronJob are kept (ignoreChanges). */
  image: pulumi.Input<string>;
  /** Secret (in the fleet namespace) holding the reader role's password under key "password". @default "cndb-reader-password" */
  readerPasswordSecretName?: pulumi.Input<string>;
  /** Database the API reads (the baked copy of the master's database). @default "postgres" */
  databaseName?: pulumi.Input<string>;
  /** @default 2 */
  minReplicas?: number;
  /** @default 10 */
  maxReplicas?: number;
  /** HPA target average CPU utilization, percent of requests. @default 70 */
  targetCpuPercent?: number;
  /** @default { cpu: "500m", memory: "1Gi" } */
  reader?: ContainerResources;
  /** @default { cpu: "250m", memory: "256Mi" } */
  api?: ContainerResources;
  /** Ephemeral storage request of the reader (its writable layer holds what warm-up copies up). @default "10Gi" */
  ephemeralStorage?: string;
  /** Warm-up mode of `cndb replica`. @default "files" */
  warmup?: "files" | "full" | "none";
  /** Internet-facing NLB instead of an in-cluster Service. @default false */
  public?: boolean;
  /** Client CIDRs allowed through the public NLB (and by the NetworkPolicy). Required when public. @default [] */
  publicSourceCidrs?: string[];
  /** Other namespaces whose pods may reach the fleet. @default [] (only the fleet's own namespace) */
  allowedNamespaces?: string[];
  /** PodDisruptionBudget maxUnavailable. @default 1 */
  maxUnavailable?: number;
  /**
   * The read API's settings (api.json, a ConfigMap). Never secrets: an `auth.tokens` entry without
   * `sha256` or `file` reads its token from the Secret built from `apiTokens`. @default {}
   */
  apiConfig?: Record<string, unknown>;
  /** Bearer tokens by name (a Secret, mounted as files): one per such `auth.tokens` entry. @default undefined */
  apiTokens?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** Deployment fields the bake CronJob owns (promotions): Pulumi must not revert them. The HPA owns replicas. */
export const FLEET_IGNORE_CHANGES = [
  "spec.replicas",
  "spec.template.spec.containers[0].image",
  "spec.template.spec.containers[1].image",
];

export function validateFleetArgs(args: Omit<ReadFleetArgs, "image">): void {
  const where = "ReadFleet";
  checkDnsLabel(where, "tenant", args.tenant, 40);
  const min = args.minReplicas ?? 2;
  const max = args.maxReplicas ?? 10;
  checkInt(where, "minReplicas", min, 1, 1000);
  checkInt(where, "maxReplicas", max, 1, 1000);
  if (max < min) throw new ArgsError(where, "maxReplicas", `must be >= minReplicas (got ${max} < ${min})`);
  checkInt(where, "targetCpuPercent", args.targetCpuPercent ?? 70, 10, 100);
  const mu = args.maxUnavailable ?? 1;
  checkInt(where, "maxUnavailable", mu, 1, 1000);
  if (min > 1 && mu >= min) throw new ArgsError(where, "maxUnavailable", `must be < minReplicas (got ${mu} >= ${min})`);
  for (const [field, r] of [["reader", args.reader], ["api", args.api]] as const) {
    if (!r) continue;
    checkQuantity(where, `${field}.cpu`, r.cpu);
    checkQuantity(where, `${field}.memory`, r.memory);
  }
  checkQuantity(where, "ephemeralStorage", args.ephemeralStorage ?? "10Gi");
  const warmup = args.warmup ?? "files";
  if (!["files", "full", "none"].includes(warmup)) throw new ArgsError(where, "warmup", `must be "files", "full" or "none" (got "${warmup}")`);
  const cidrs = args.publicSourceCidrs ?? [];
  checkCidrs(where, "publicSourceCidrs", cidrs, true);
  if (args.public && cidrs.length === 0) throw new ArgsError(where, "publicSourceCidrs", "must list at least one CIDR when public is true");
  for (const ns of args.allowedNamespaces ?? []) checkDnsLabel(where, "allowedNamespaces", ns);
  const { secretTokenNames } = renderApiConfig(args.apiConfig ?? {});
  if (secretTokenNames.length > 0 && args.apiTokens === undefined)
    throw new ArgsError(where, "apiTokens", `must hold the token(s) ${secretTokenNames.join(", ")} named in apiConfig.auth.tokens without sha256 or file`);
  if (secretTokenNames.length === 0 && args.apiTokens !== undefined)
    throw new ArgsError(where, "apiTokens", "is set but no apiConfig.auth.tokens entry reads a token file (add { name, routes } entries)");
}

/** The token Secret's data: exactly the named tokens, each present and non-empty. */
export function tokenSecretData(names: string[], tokens: Record<string, string>): Record<string, string> {
  const missing = names.filter((n) => typeof tokens[n] !== "string" || tokens[n] === "");
  if (missing.length > 0) throw new ArgsError("ReadFleet", "apiTokens", `has no token for ${missing.join(", ")} (named in apiConfig.auth.tokens)`);
  const extra = Object.keys(tokens).filter((n) => !names.includes(n));
  if (extra.length > 0) throw new ArgsError("ReadFleet", "apiTokens", `has token(s) ${extra.join(", ")} that no apiConfig.auth.tokens entry names`);
  return Object.fromEntries(names.map((n) => [n, tokens[n]]));
}

/** The reader container: PostgreSQL in place on the image's own (copy-on-write) PGDATA. */
export function readerArgs(warmup: string): string[] {
  return [
    "replica",
    "--snapshot", IMAGE_SNAPSHOT_DIR,
    "--in-place",
    "--port", String(READER_PORT),
    "--listen", "0.0.0.0",
    "--socket-dir", SOCKET_DIR,
    "--warmup", warmup,
    "--ready-file", READY_FILE,
  ];
}

/** The API sidecar: the same image (it carries snapshot.json), talking to the reader over the shared socket. */
export function apiArgs(databaseName: string): string[] {
  return [
    "api",
    "--replica", `postgres://${READER_ROLE}@/${encodeURIComponent(databaseName)}?host=${SOCKET_DIR}`,
    "--snapshot", IMAGE_SNAPSHOT_DIR,
    "--port", String(API_PORT),
    "--listen", "0.0.0.0",
    "--config", API_CONFIG_FILE,
  ];
}

/**
 * The read-only fleet of one tenant: Namespace, Deployment (reader + read API sidecar from the snapshot
 * image), Service, HPA, PDB and a NetworkPolicy admitting only the allowed namespaces.
 */
export class ReadFleet extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly deploymentName: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  /** The image the Deployment ran at the last `pulumi up`/`refresh` (promotions show after a refresh). */
  readonly currentImage: pulumi.Output<string>;
  /** http://<host>:8080 */
  readonly apiUrl: pulumi.Output<string>;
  /** <host>:5432 */
  readonly postgresEndpoint: pulumi.Output<string>;

  constructor(name: string, args: ReadFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("container-native-db:index:ReadFleet", name, {}, opts);
    validateFleetArgs(args);
    const parent = { parent: this };
    const tenant = args.tenant;
    const min = args.minReplicas ?? 2;
    const podLabels = labels(tenant, "reader");
    const selector = selectorLabels(tenant, "reader");

    const ns = new k8s.core.v1.Namespace(
      `${name}-ns`,
      { metadata: { name: namespaceName(tenant), labels: { ...POD_SECURITY_LABELS, "app.kubernetes.io/instance": tenant } } },
      parent,
    );
    this.namespace = ns.metadata.name;
    const meta = (n: string) => ({ name: n, namespace: this.namespace, labels: podLabels });

    const sa = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      { metadata: meta(NAMES.fleetServiceAccount), automountServiceAccountToken: false },
      parent,
    );
    const rendered = renderApiConfig(args.apiConfig ?? {});
    const apiConfig = new k8s.core.v1.ConfigMap(`${name}-api-config`, { metadata: meta(NAMES.apiConfig), data: { "api.json": rendered.json } }, parent);
    const tokens =
      args.apiTokens !== undefined
        ? new k8s.core.v1.Secret(
            `${name}-api-tokens`,
            {
              metadata: meta(NAMES.apiTokens),
              type: "Opaque",
              stringData: pulumi.secret(pulumi.output(args.apiTokens).apply((t) => tokenSecretData(rendered.secretTokenNames, t))),
            },
            parent,
          )
        : undefined;

    const reader = args.reader ?? { cpu: "500m", memory: "1Gi" };
    const api = args.api ?? { cpu: "250m", memory: "256Mi" };
    const passwordEnv = {
      name: "PGPASSWORD",
      valueFrom: { secretKeyRef: { name: args.readerPasswordSecretName ?? NAMES.readerPassword, key: "password" } },
    };
    const runMount = { name: "run", mountPath: SOCKET_DIR };
    const deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: meta(NAMES.deployment),
        spec: {
          replicas: min,
          selector: { matchLabels: selector },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
          template: {
            metadata: { labels: podLabels },
            spec: {
              serviceAccountName: sa.metadata.name,
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: podSecurityContext(),
              terminationGracePeriodSeconds: 30,
              topologySpreadConstraints: [
                { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
                { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
              ],
              containers: [
                {
                  name: NAMES.readerContainer,
                  image: args.image,
                  args: readerArgs(args.warmup ?? "files"),
                  ports: [{ name: "postgres", containerPort: READER_PORT }],
                  resources: {
                    requests: { cpu: reader.cpu, memory: reader.memory, "ephemeral-storage": args.ephemeralStorage ?? "10Gi" },
                    limits: { memory: reader.memory },
                  },
                  // PGDATA is in the image's root filesystem and PostgreSQL opens it read-write (pid file,
                  // relation files); the overlay's upper layer takes those writes. Everything else is locked down.
                  securityContext: containerSecurityContext(false),
                  startupProbe: { exec: { command: ["test", "-f", READY_FILE] }, periodSeconds: 5, failureThreshold: 720 },
                  readinessProbe: { exec: { command: ["test", "-f", READY_FILE] }, periodSeconds: 5, failureThreshold: 2 },
                  livenessProbe: { tcpSocket: { port: READER_PORT }, periodSeconds: 10, failureThreshold: 3 },
                  volumeMounts: [runMount, { name: "tmp", mountPath: "/tmp" }],
                },
                {
                  name: NAMES.apiContainer,
                  image: args.image,
                  args: pulumi.output(args.databaseName ?? "postgres").apply(apiArgs),
                  ports: [{ name: "http", containerPort: API_PORT }],
                  env: [passwordEnv],
                  resources: { requests: { cpu: api.cpu, memory: api.memory }, limits: { memory: api.memory } },
                  securityContext: containerSecurityContext(true),
                  readinessProbe: { httpGet: { path: "/readyz", port: API_PORT }, periodSeconds: 5, failureThreshold: 2 },
                  livenessProbe: { httpGet: { path: "/healthz", port: API_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
                  volumeMounts: [
                    runMount,
                    { name: "api-tmp", mountPath: "/tmp" },
                    { name: "api-config", mountPath: API_CONFIG_DIR, readOnly: true },
                    ...(tokens ? [{ name: "api-tokens", mountPath: API_TOKENS_DIR, readOnly: true }] : []),
                  ],
                },
              ],
              volumes: [
                { name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
                { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
                { name: "api-tmp", emptyDir: { sizeLimit: "64Mi" } },
                { name: "api-config", configMap: { name: apiConfig.metadata.name, defaultMode: 0o444 } },
                ...(tokens ? [{ name: "api-tokens", secret: { secretName: tokens.metadata.name, defaultMode: 0o440 } }] : []),
              ],
            },
          },
        },
      },
      // Promotions by the bake (kubectl set image) and HPA scaling are kept: see docs/deploy.md.
      { parent: this, ignoreChanges: FLEET_IGNORE_CHANGES },
    );
    this.deploymentName = deployment.metadata.name;
    this.currentImage = deployment.spec.template.spec.containers.apply((c) => c[0].image ?? "");

    const service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: {
          ...meta(NAMES.service),
          annotations: args.public
            ? {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                // Keep client addresses so the NetworkPolicy's ipBlocks apply to them.
                "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=true",
              }
            : {},
        },
        spec: {
          type: args.public ? "LoadBalancer" : "ClusterIP",
          selector,
          ports: [
            { name: "http", port: API_PORT, targetPort: "http", protocol: "TCP" },
            { name: "postgres", port: READER_PORT, targetPort: "postgres", protocol: "TCP" },
          ],
          ...(args.public ? { loadBalancerSourceRanges: args.publicSourceCidrs } : {}),
        },
      },
      parent,
    );
    this.serviceName = service.metadata.name;
    const host = args.public
      ? service.status.loadBalancer.ingress.apply((i) => i?.[0]?.hostname ?? i?.[0]?.ip ?? "")
      : pulumi.interpolate`${service.metadata.name}.${this.namespace}.svc.cluster.local`;
    this.apiUrl = pulumi.interpolate`http://${host}:${API_PORT}`;
    this.postgresEndpoint = pulumi.interpolate`${host}:${READER_PORT}`;

    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${name}-hpa`,
      {
        metadata: meta(NAMES.deployment),
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name },
          minReplicas: min,
          maxReplicas: args.maxReplicas ?? 10,
          metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: args.targetCpuPercent ?? 70 } } }],
        },
      },
      parent,
    );
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: meta(NAMES.deployment), spec: { maxUnavailable: args.maxUnavailable ?? 1, selector: { matchLabels: selector } } },
      parent,
    );

    const ports = [
      { protocol: "TCP", port: API_PORT },
      { protocol: "TCP", port: READER_PORT },
    ];
    const from: k8s.types.input.networking.v1.NetworkPolicyPeer[] = [
      { podSelector: {} },
      ...(args.allowedNamespaces ?? []).map((n) => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": n } } })),
      ...(args.public ? (args.publicSourceCidrs ?? []).map((cidr) => ({ ipBlock: { cidr } })) : []),
    ];
    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      {
        metadata: meta(NAMES.deployment),
        spec: {
          podSelector: { matchLabels: selector },
          policyTypes: ["Ingress", "Egress"],
          ingress: [{ from, ports }],
          // Readers need no network out: the API talks to PostgreSQL over the pod-local socket.
          egress: [],
        },
      },
      parent,
    );

    this.registerOutputs({
      namespace: this.namespace,
      apiUrl: this.apiUrl,
      postgresEndpoint: this.postgresEndpoint,
      currentImage: this.currentImage,
    });
  }
}
