import type * as k8s from "@pulumi/kubernetes";
import { RUNTIME_GID, RUNTIME_UID } from "../common/contract";

/**
 * Kubernetes names and the security settings every pod of this package uses (the "restricted" Pod
 * Security Standard, plus uid/gid 999 = the postgres account of the images).
 */

/** Object names inside the tenant namespace (fixed, so RBAC can name the Deployment by resourceNames). */
export const NAMES = {
  deployment: "reader",
  service: "reader",
  readerContainer: "reader",
  apiContainer: "api",
  bakeServiceAccount: "cndb-bake",
  fleetServiceAccount: "cndb-reader",
  bakeRole: "cndb-bake-promote",
  bakeSpec: "cndb-bake-spec",
  apiConfig: "cndb-api-config",
  apiTokens: "cndb-api-tokens",
  readerPassword: "cndb-reader-password",
  cronJob: "cndb-bake-refresh",
} as const;

export function namespaceName(tenant: string): string {
  return `cndb-${tenant}`;
}

export const APP_LABEL = "container-native-db";

export function labels(tenant: string, component: "reader" | "bake"): Record<string, string> {
  return {
    "app.kubernetes.io/name": APP_LABEL,
    "app.kubernetes.io/instance": tenant,
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/managed-by": "pulumi",
  };
}

/** Selector labels: the stable subset of `labels` (a Deployment's selector is immutable). */
export function selectorLabels(tenant: string, component: "reader" | "bake"): Record<string, string> {
  return {
    "app.kubernetes.io/name": APP_LABEL,
    "app.kubernetes.io/instance": tenant,
    "app.kubernetes.io/component": component,
  };
}

export function podSecurityContext(): k8s.types.input.core.v1.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUNTIME_UID,
    runAsGroup: RUNTIME_GID,
    fsGroup: RUNTIME_GID,
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/**
 * @param readOnlyRootFilesystem false only for the reader, whose PGDATA is part of the image's root
 *   filesystem and which PostgreSQL must open read-write (see docs/deploy.md).
 */
export function containerSecurityContext(readOnlyRootFilesystem: boolean): k8s.types.input.core.v1.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUNTIME_UID,
    runAsGroup: RUNTIME_GID,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Namespace labels that make the API server enforce the restricted Pod Security Standard. */
export const POD_SECURITY_LABELS = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
  "pod-security.kubernetes.io/warn": "restricted",
  "pod-security.kubernetes.io/audit": "restricted",
};
