/**
 * Pulling an image from a registry into an OCI layout: for a multi-platform index, the manifest of
 * linux/<this machine's arch> (the baked PGDATA is only readable there). Used to fetch the base image
 * and, in tests and tools, to pull a pushed snapshot image back.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { resolveAuth, type RegistryAuth } from "./auth";
import { blobPath, initLayout, writeBlob, writeIndex } from "./layout";
import { ANNOTATIONS, MT, hostArchitecture, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest } from "./oci";
import { progressThrottle, type Progress } from "./progress";
import { parseImageRef, type ImageRef } from "./reference";
import { RegistryClient, RegistryError } from "./registry";

export interface PullOptions {
  auth?: RegistryAuth;
  insecureRegistries?: readonly string[];
  /** @default { os: "linux", architecture: this machine's } */
  platform?: { os: string; architecture: string };
  signal?: AbortSignal;
  onProgress?: (e: Progress) => void;
  /** Progress phase name. @default "pull" */
  phase?: string;
  /** Option name for errors. @default "image" */
  what?: string;
}

export interface FetchedImage {
  ref: ImageRef;
  /** Descriptor of the (platform) image manifest, as stored in the layout. */
  descriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
}

/** Fetches manifest, config and layers of `ref` into the blobs of `layoutDir` (which must be initialised). */
export async function fetchImage(refText: string, layoutDir: string, opts: PullOptions = {}): Promise<FetchedImage> {
  const what = opts.what ?? "image";
  const ref = parseImageRef(refText, what);
  const client = new RegistryClient(ref, {
    auth: await resolveAuth(ref.registry, opts.auth),
    actions: "pull",
    insecureRegistries: opts.insecureRegistries,
    signal: opts.signal,
  });
  const platform = opts.platform ?? { os: "linux", architecture: hostArchitecture() };
  let top = await client.getManifest(ref.digest ?? ref.tag ?? "latest");
  if (top.mediaType === MT.index || top.mediaType === MT.dockerList) {
    const index = JSON.parse(top.bytes.toString("utf8")) as ImageIndex;
    const pick = index.manifests.find((m) => m.platform?.os === platform.os && m.platform?.architecture === platform.architecture);
    if (!pick) {
      const have = index.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(", ");
      throw new RegistryError(`${what}: ${refText} has no ${platform.os}/${platform.architecture} image (it has ${have})`);
    }
    top = await client.getManifest(pick.digest);
  }
  if (top.mediaType !== MT.manifest && top.mediaType !== MT.dockerManifest) {
    throw new RegistryError(`${what}: ${refText} is a ${top.mediaType || "manifest of unknown type"}, not an image manifest`);
  }
  const manifest = JSON.parse(top.bytes.toString("utf8")) as ImageManifest;
  const blobs = [manifest.config, ...manifest.layers];
  const total = blobs.reduce((n, b) => n + b.size, 0);
  let done = 0;
  const report = progressThrottle(opts.phase ?? "pull", total, opts.onProgress);
  for (const b of blobs) {
    const file = blobPath(layoutDir, b.digest);
    if (!existsSync(file)) {
      if (b.urls?.length) throw new RegistryError(`${what}: ${refText} has a foreign layer ${b.digest} (served from ${b.urls[0]}); not supported`);
      await client.downloadBlob(b.digest, file, (n) => report((done += n)));
    } else report((done += b.size));
  }
  report(done, true);
  const descriptor = writeBlob(layoutDir, top.bytes, top.mediaType);
  const config = JSON.parse(readFileSync(blobPath(layoutDir, manifest.config.digest), "utf8")) as ImageConfig;
  return { ref, descriptor, manifest, config };
}

/**
 * Pulls `ref` into a new OCI layout at `dir` (index.json names it by its tag, or by `refName`).
 * Returns the manifest digest.
 */
export async function pullImage(refText: string, dir: string, opts: PullOptions & { refName?: string } = {}): Promise<FetchedImage> {
  const created = !existsSync(dir);
  initLayout(dir);
  try {
    const img = await fetchImage(refText, dir, opts);
    const name = opts.refName ?? img.ref.tag ?? img.descriptor.digest;
    writeIndex(dir, [{ ...img.descriptor, annotations: { [ANNOTATIONS.refName]: name } }]);
    return img;
  } catch (e) {
    if (created) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
