/**
 * OCI image layout on disk (image-spec "image-layout"): `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ANNOTATIONS, MT, isSha256, sha256, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest } from "./oci";

export function blobsDir(layoutDir: string): string {
  return path.join(layoutDir, "blobs", "sha256");
}

export function blobPath(layoutDir: string, digest: string): string {
  if (!isSha256(digest)) throw new Error(`OCI layout: unsupported digest ${JSON.stringify(digest)} (only sha256)`);
  return path.join(blobsDir(layoutDir), digest.slice("sha256:".length));
}

export function initLayout(layoutDir: string): void {
  mkdirSync(blobsDir(layoutDir), { recursive: true });
  writeFileSync(path.join(layoutDir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
}

/** Stores bytes as a blob (exactly these bytes: the digest is of them) and returns its descriptor. */
export function writeBlob(layoutDir: string, data: string | Buffer, mediaType: string): Descriptor {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  const digest = sha256(buf);
  const file = blobPath(layoutDir, digest);
  if (!existsSync(file)) {
    writeFileSync(`${file}.tmp`, buf);
    renameSync(`${file}.tmp`, file);
  }
  return { mediaType, digest, size: buf.length };
}

export function readBlob(layoutDir: string, digest: string): Buffer {
  return readFileSync(blobPath(layoutDir, digest));
}

export function writeIndex(layoutDir: string, manifests: Descriptor[]): void {
  const index: ImageIndex = { schemaVersion: 2, mediaType: MT.index, manifests };
  writeFileSync(path.join(layoutDir, "index.json"), JSON.stringify(index));
}

export interface LayoutImage {
  index: ImageIndex;
  /** The manifest's descriptor in index.json. */
  descriptor: Descriptor;
  manifest: ImageManifest;
  /** The manifest's exact bytes (what gets pushed). */
  manifestBytes: Buffer;
  config: ImageConfig;
}

/**
 * Reads the image from a layout: the index.json entry whose ref.name annotation is `refName`, or the
 * only entry. Checks the manifest and config blobs against their digests.
 */
export function readLayout(layoutDir: string, refName?: string): LayoutImage {
  const where = `OCI layout ${layoutDir}`;
  let index: ImageIndex;
  try {
    index = JSON.parse(readFileSync(path.join(layoutDir, "index.json"), "utf8")) as ImageIndex;
    JSON.parse(readFileSync(path.join(layoutDir, "oci-layout"), "utf8"));
  } catch (e) {
    throw new Error(`${where}: not an OCI image layout (${(e as Error).message})`);
  }
  const manifests = (index.manifests ?? []).filter((m) => m.mediaType === MT.manifest);
  const named = refName === undefined ? manifests : manifests.filter((m) => m.annotations?.[ANNOTATIONS.refName] === refName);
  if (named.length !== 1) {
    throw new Error(`${where}: expected one image manifest${refName ? ` named ${refName}` : ""} in index.json, found ${named.length}`);
  }
  const descriptor = named[0];
  const manifestBytes = readVerified(layoutDir, descriptor, where);
  const manifest = JSON.parse(manifestBytes.toString("utf8")) as ImageManifest;
  const config = JSON.parse(readVerified(layoutDir, manifest.config, where).toString("utf8")) as ImageConfig;
  return { index, descriptor, manifest, manifestBytes, config };
}

function readVerified(layoutDir: string, d: Descriptor, where: string): Buffer {
  const buf = readBlob(layoutDir, d.digest);
  if (buf.length !== d.size || sha256(buf) !== d.digest) throw new Error(`${where}: blob ${d.digest} does not match its descriptor (size or digest)`);
  return buf;
}
