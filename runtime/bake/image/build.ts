/**
 * Step 6 of the bake: the OCI image layout of a snapshot. Data layer (PGDATA + snapshot.json at
 * IMAGE_SNAPSHOT_DIR) on top of a base image's layers, or alone on an empty base for local use.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { parseManifest, type SnapshotManifest } from "../../../common/snapshot";
import type { RegistryAuth } from "./auth";
import { buildImageConfig } from "./config";
import { writeSnapshotLayer } from "./layer";
import { blobPath, blobsDir, initLayout, writeBlob, writeIndex } from "./layout";
import { ANNOTATIONS, MT, ociLayerMediaType, type Descriptor, type ImageManifest } from "./oci";
import type { Progress } from "./progress";
import { formatImageRef, parseImageRef } from "./reference";
import { fetchImage, type FetchedImage } from "./pull";

export interface WriteImageOptions {
  /** Holds pgdata/ and snapshot.json (anything else there stays out of the image). */
  snapshotDir: string;
  manifest: SnapshotManifest;
  /** Registry reference of the PostgreSQL base image; without it the data layer stands alone. */
  baseImage?: string;
  /** Layout directory to create (must not exist, or be empty). */
  out: string;
  /** gzip the data layer. @default DEFAULT_COMPRESS (true, see there) */
  compress?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: Progress) => void;
  /** Auth for fetching the base image. @default from the environment (see auth.ts) */
  auth?: RegistryAuth;
  /** Registries (host:port) reached over plain HTTP besides loopback ones. */
  insecureRegistries?: readonly string[];
  /** uid/gid written for the snapshot files instead of their own (e.g. the base image's postgres account). */
  owner?: { uid: number; gid: number };
}

export interface WriteImageResult {
  manifestDigest: string;
  /** Digest of the data layer blob (equals its diff_id when uncompressed). */
  layerDigest: string;
  layerDiffId: string;
  layerSize: number;
}

/**
 * gzip (level 1) by default. Measured here on a 191 MB PGDATA: tar 0.5-0.9 s -> 192 MB; gzip -1
 * 1.6 s -> 48 MB (25%); gzip -6 4.2 s -> 45 MB; gunzip 0.55 s (~350 MB/s). A pull streams download
 * and gunzip, so gzip wins whenever a node's download rate is under ~350 MB/s (most EKS nodes, and
 * every node at its baseline bandwidth) and stores/transfers a quarter of the bytes; the cost is ~1 s
 * per 200 MB in the bake, off the serving path. `compress: false` for a purely local image.
 */
export const DEFAULT_COMPRESS = true;

export async function writeImageLayout(opts: WriteImageOptions): Promise<WriteImageResult> {
  const manifest = parseManifest(opts.manifest, "writeImageLayout: manifest");
  if (opts.baseImage !== undefined) parseImageRef(opts.baseImage, "--base-image");
  if (existsSync(opts.out) && readdirSync(opts.out).length > 0) {
    throw new Error(`--image: output directory ${opts.out} exists and is not empty`);
  }
  const created = !existsSync(opts.out);
  try {
    initLayout(opts.out);
    let base: FetchedImage | undefined;
    if (opts.baseImage) {
      base = await fetchImage(opts.baseImage, opts.out, {
        auth: opts.auth,
        insecureRegistries: opts.insecureRegistries,
        signal: opts.signal,
        onProgress: opts.onProgress,
        phase: "base",
        what: "--base-image",
      });
    }
    const layer = await writeSnapshotLayer({
      snapshotDir: opts.snapshotDir,
      blobsDir: blobsDir(opts.out),
      mtime: new Date(manifest.createdAt),
      compress: opts.compress ?? DEFAULT_COMPRESS,
      owner: opts.owner,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    const config = buildImageConfig({ manifest, diffId: layer.diffId, base: base?.config, created: manifest.createdAt });
    const configDesc = writeBlob(opts.out, JSON.stringify(config), MT.config);
    const baseLayers: Descriptor[] = (base?.manifest.layers ?? []).map((l) => ({
      mediaType: ociLayerMediaType(l.mediaType),
      digest: l.digest,
      size: l.size,
      ...(l.annotations ? { annotations: l.annotations } : {}),
    }));
    const image: ImageManifest = {
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: configDesc,
      layers: [...baseLayers, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      annotations: {
        [ANNOTATIONS.created]: manifest.createdAt,
        ...(base ? { [ANNOTATIONS.baseName]: formatImageRef({ ...base.ref, digest: undefined }), [ANNOTATIONS.baseDigest]: base.descriptor.digest } : {}),
      },
    };
    const manifestDesc = writeBlob(opts.out, JSON.stringify(image), MT.manifest);
    if (base) rmSync(blobPath(opts.out, base.descriptor.digest), { force: true }); // the base's own manifest is not part of our image
    writeIndex(opts.out, [{ ...manifestDesc, annotations: { [ANNOTATIONS.refName]: manifest.id } }]);
    return { manifestDigest: manifestDesc.digest, layerDigest: layer.digest, layerDiffId: layer.diffId, layerSize: layer.size };
  } catch (e) {
    if (created) rmSync(opts.out, { recursive: true, force: true });
    else for (const f of readdirSync(opts.out)) rmSync(`${opts.out}/${f}`, { recursive: true, force: true });
    throw e;
  }
}
