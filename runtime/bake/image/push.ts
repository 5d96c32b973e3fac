/**
 * Pushes the image of an OCI layout to a registry (blobs, then the manifest under a tag), then reads
 * the manifest back by tag and checks it is byte-for-byte what we pushed.
 */
import { existsSync, statSync } from "node:fs";
import { LABELS } from "../../../common/snapshot";
import { resolveAuth, type RegistryAuth } from "./auth";
import { blobPath, readLayout } from "./layout";
import { ANNOTATIONS, MT } from "./oci";
import { progressThrottle, type Progress } from "./progress";
import { parseImageRef } from "./reference";
import { RegistryClient, RegistryError } from "./registry";

export interface PushOptions {
  layoutDir: string;
  /** `registry/repository[:tag]`; without a tag, the snapshot id. */
  ref: string;
  signal?: AbortSignal;
  onProgress?: (e: Progress) => void;
  /** @default from the environment: CNDB_REGISTRY_USER/PASSWORD, ECR token for ECR hosts, else anonymous */
  auth?: RegistryAuth;
  insecureRegistries?: readonly string[];
  /** Upload blobs in PATCH chunks of this many bytes. @default whole blob in one PATCH */
  chunkSize?: number;
}

export interface PushResult {
  manifestDigest: string;
  /** `registry/repository:tag` */
  ref: string;
  /** `registry/repository@sha256:...`: what a deployment should run. */
  pinnedRef: string;
  tag: string;
  /** Per blob: whether it was already there, mounted from the base image's repository, or uploaded. */
  blobs: { digest: string; size: number; how: "exists" | "mounted" | "uploaded" }[];
  /** "exists" when the tag already named this very manifest. */
  manifest: "exists" | "pushed";
}

export async function pushImage(opts: PushOptions): Promise<PushResult> {
  const ref = parseImageRef(opts.ref, "--push");
  if (ref.digest) throw new Error(`--push: ${JSON.stringify(opts.ref)} carries a digest; give a repository, optionally with a tag`);
  const img = readLayout(opts.layoutDir);
  const tag = ref.tag ?? img.descriptor.annotations?.[ANNOTATIONS.refName] ?? img.config.config?.Labels?.[LABELS.snapshotId];
  if (!tag) throw new Error(`--push: ${opts.ref} has no tag and the layout names no snapshot id`);
  const blobs = [img.manifest.config, ...img.manifest.layers];
  for (const b of blobs) {
    const f = blobPath(opts.layoutDir, b.digest);
    if (!existsSync(f) || statSync(f).size !== b.size) throw new Error(`OCI layout ${opts.layoutDir}: blob ${b.digest} is missing or has the wrong size`);
  }
  const client = new RegistryClient(ref, {
    auth: await resolveAuth(ref.registry, opts.auth),
    actions: "pull,push",
    insecureRegistries: opts.insecureRegistries,
    signal: opts.signal,
  });
  // Base layers can be mounted instead of uploaded when the base lives in the same registry.
  const baseName = img.manifest.annotations?.[ANNOTATIONS.baseName];
  const base = baseName ? parseImageRef(baseName) : undefined;
  const mountFrom = base && base.registry === ref.registry ? base.repository : undefined;

  const total = blobs.reduce((n, b) => n + b.size, 0);
  let done = 0;
  const report = progressThrottle("push", total, opts.onProgress);
  const results: PushResult["blobs"] = [];
  for (const b of blobs) {
    let sent = 0;
    const how = await client.uploadBlob(blobPath(opts.layoutDir, b.digest), b.digest, b.size, {
      mountFrom: b === img.manifest.config ? undefined : mountFrom,
      chunkSize: opts.chunkSize,
      onBytes: (n) => {
        sent += n;
        report(Math.min(total, done + sent));
      },
    });
    done += b.size;
    report(done);
    results.push({ digest: b.digest, size: b.size, how });
  }
  // Re-pushing the same image (a retried bake) must not rewrite the tag: ECR's immutable tags refuse that.
  const already = (await client.manifestDigest(tag, MT.manifest)) === img.descriptor.digest;
  if (!already) await client.putManifest(tag, img.manifestBytes, MT.manifest);
  report(done, true);
  const back = await client.getManifest(tag, MT.manifest);
  if (back.digest !== img.descriptor.digest) {
    throw new RegistryError(`--push: ${ref.registry}/${ref.repository}:${tag} reads back as ${back.digest}, not the pushed ${img.descriptor.digest}`);
  }
  const name = `${ref.registry}/${ref.repository}`;
  return { manifestDigest: img.descriptor.digest, ref: `${name}:${tag}`, pinnedRef: `${name}@${img.descriptor.digest}`, tag, blobs: results, manifest: already ? "exists" : "pushed" };
}
