/**
 * OCI image-spec types and media types (the subset we write and read), and content digests.
 * Docker's schema-2 media types are accepted on input and mapped to their OCI equivalents.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

export const MT = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayer: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** What we ask a registry for when fetching a manifest by tag. */
export const MANIFEST_ACCEPT = [MT.index, MT.manifest, MT.dockerList, MT.dockerManifest].join(", ");

/** Docker layer media types in an OCI manifest: same bytes, OCI names. */
export function ociLayerMediaType(mt: string): string {
  if (mt === MT.dockerLayerGzip) return MT.layerGzip;
  if (mt === MT.dockerForeignLayer) return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
  return mt;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
  urls?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  author?: string;
}

export interface ImageConfig {
  created?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, object>;
    Volumes?: Record<string, object>;
    StopSignal?: string;
  };
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: HistoryEntry[];
}

export const ANNOTATIONS = {
  refName: "org.opencontainers.image.ref.name",
  created: "org.opencontainers.image.created",
  baseName: "org.opencontainers.image.base.name",
  baseDigest: "org.opencontainers.image.base.digest",
} as const;

export function sha256(data: string | Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return `sha256:${h.digest("hex")}`;
}

export function isSha256(digest: string): boolean {
  return /^sha256:[a-f0-9]{64}$/.test(digest);
}

/** The GOARCH name of this machine: the PGDATA we bake is only readable by a server of the same arch. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", ia32: "386" };
  return map[process.arch] ?? process.arch;
}
