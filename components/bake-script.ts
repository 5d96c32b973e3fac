/**
 * The script the bake Job and CronJob run (stored in the bake-spec ConfigMap): `cndb bake` into an image,
 * push it to ECR, then point only the fleet Deployment's containers at it. Pure, so tests read the exact text.
 */

export interface BakeSpec {
  /** postgres://host:port/db?sslmode=require; never a password (the bake reads it from Secrets Manager). */
  sourceUrl: string;
  sourceSecretArn: string;
  /** Digest-pinned tools image the snapshot image is layered on. */
  baseImage: string;
  /** ECR repository URL (no tag) the snapshot images go to. */
  repositoryUrl: string;
  namespace: string;
  deployment: string;
  /** Containers of the Deployment that run the snapshot image. */
  containers: string[];
  jobs: number;
  schemas: string[];
  includeTables: string[];
  excludeTables: string[];
}

/** Where the bake works (an emptyDir sized for the dump + PGDATA) and where its JSON result goes. */
export const BAKE_WORK_DIR = "/work";
export const BAKE_SCRIPT_DIR = "/etc/cndb/bake";
export const BAKE_SCRIPT = `${BAKE_SCRIPT_DIR}/bake.sh`;
export const READER_PASSWORD_ENV = "READER_PASSWORD";
/** Set on the initial Job only (derived from snapshot.version); the CronJob leaves the tag to the bake (= snapshot id). */
export const SNAPSHOT_TAG_ENV = "SNAPSHOT_TAG";

/** Single-quote for bash. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Arguments of `cndb bake` (without the --push value, which the script computes). */
export function bakeArgs(spec: BakeSpec, workDir = BAKE_WORK_DIR): string[] {
  const args = [
    "bake",
    "--source", spec.sourceUrl,
    "--source-secret-arn", spec.sourceSecretArn,
    "--out", `${workDir}/snapshot`,
    "--image",
    "--base-image", spec.baseImage,
    "--reader-password-env", READER_PASSWORD_ENV,
    "--jobs", String(spec.jobs),
    "--json",
  ];
  for (const s of spec.schemas) args.push("--schema", s);
  for (const t of spec.includeTables) args.push("--include-table", t);
  for (const t of spec.excludeTables) args.push("--exclude-table", t);
  return args;
}

/** Prints the pushed image as `<repo>:<tag>@<digest>` from the bake's JSON result (the snapshot manifest's `image`). */
const PUSHED_REF_JS = [
  'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));',
  "const i = r.image ?? r.manifest?.image ?? r.snapshot?.image;",
  // tag and digest: the tag for people reading `kubectl get`, the digest is what the nodes pull
  'const d = i?.manifestDigest ? `@${i.manifestDigest}` : "";',
  'const ref = i?.ref ? `${i.ref}${d}` : d ? `${process.argv[2]}${d}` : "";',
  'if (!ref) { console.error("bake: --json result names no pushed image"); process.exit(1); }',
  "console.log(ref);",
].join(" ");

/** @param workDir the emptyDir the bake works in (a parameter so tests can run the script elsewhere). */
export function renderBakeScript(spec: BakeSpec, workDir = BAKE_WORK_DIR): string {
  if (spec.containers.length === 0) throw new Error("renderBakeScript: containers must name at least one container");
  const cli = ["node", "/app/bin/runtime/cli.js", ...bakeArgs(spec, workDir).map(shq)].join(" ");
  const work = shq(workDir);
  const setImage = spec.containers.map((c) => `${c}="$pushed"`).join(" ");
  const deploy = shq(spec.deployment);
  const ns = shq(spec.namespace);
  return `#!/bin/bash
# Rendered by container-native-db (components/bake-script.ts). Bake the master into a snapshot image,
# push it, then promote it to the read fleet. No secret is in this file: the master password comes
# from Secrets Manager (IRSA), the reader password from the environment.
set -euo pipefail
: "\${${READER_PASSWORD_ENV}:?the reader password must be in the environment}"
repo=${shq(spec.repositoryUrl)}
ref="$repo"
if [ -n "\${${SNAPSHOT_TAG_ENV}:-}" ]; then ref="$repo:\${${SNAPSHOT_TAG_ENV}}"; fi
work=${work}
rm -rf "$work/snapshot" "$work/result.json"

${cli} --push "$ref" > "$work/result.json"
pushed=$(node -e ${shq(PUSHED_REF_JS)} "$work/result.json" "$repo")
echo "bake: pushed $pushed"

# Promotion: only this Deployment's snapshot containers (RBAC allows get/patch on it alone).
if out=$(kubectl -n ${ns} get deployment ${deploy} -o name 2>&1); then
  kubectl -n ${ns} set image deployment/${spec.deployment} ${setImage}
  echo "promote: deployment/${spec.deployment} now runs $pushed"
elif [[ "$out" == *NotFound* ]]; then
  echo "promote: deployment/${spec.deployment} does not exist yet; the stack creates it with $pushed"
else
  echo "promote: cannot read deployment/${spec.deployment}: $out" >&2
  exit 1
fi
`;
}

/** The snapshot image ref the initial Job pushes, so the Deployment can name it before the Job has run. */
export function initialImageRef(repositoryUrl: string, tag: string): string {
  return `${repositoryUrl}:${tag}`;
}

/** Tag of the initial bake: the config's snapshot.version plus the tools image (its code ships in every snapshot image). */
export function initialSnapshotTag(version: string, toolsTag: string): string {
  return `v${version}-${toolsTag.replace(/^tools-/, "").slice(0, 8)}`;
}
