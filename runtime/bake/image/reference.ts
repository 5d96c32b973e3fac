/**
 * Image references (`[registry/]repository[:tag][@digest]`), parsed with the grammar of the
 * distribution project's reference package, plus Docker Hub's defaults (docker.io, library/).
 */

export interface ImageRef {
  /** Host[:port] as written (docker.io for Docker Hub). */
  registry: string;
  /** Repository path inside the registry, e.g. `library/postgres`, `team/db`. */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

export const REF_SYNTAX = "[registry[:port]/]repository[:tag][@sha256:<64 hex>], e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/snapshots:v1 or 127.0.0.1:5000/db";

export class ImageRefError extends Error {
  constructor(what: string, ref: string, why: string) {
    super(`${what}: invalid image reference ${JSON.stringify(ref)}: ${why}; expected ${REF_SYNTAX}`);
    this.name = "ImageRefError";
  }
}

/** Parses a reference; `what` names the option it came from (e.g. "--push") for the error. */
export function parseImageRef(ref: string, what = "image reference"): ImageRef {
  const fail = (why: string): never => {
    throw new ImageRefError(what, ref, why);
  };
  if (typeof ref !== "string" || ref.trim() === "") fail("it is empty");
  if (ref !== ref.trim() || /\s/.test(ref)) fail("it contains whitespace");
  if (ref.includes("://")) fail("drop the URL scheme (http:// or https://)");
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`bad digest ${JSON.stringify(digest)}`);
    if (digest.startsWith("sha256:") && !SHA256.test(digest)) fail("a sha256 digest has 64 lowercase hex digits");
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`bad tag ${JSON.stringify(tag)} (letters, digits, _ . -; at most 128; not starting with . or -)`);
  }
  const parts = rest.split("/");
  let registry = "docker.io";
  // Like docker: the first component is a registry host when it has a dot or a port, or is localhost.
  if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === "localhost" || parts[0].startsWith("["))) {
    registry = parts.shift()!;
    if (!HOST.test(registry)) fail(`bad registry host ${JSON.stringify(registry)}`);
    const port = registry.match(/:(\d+)$/);
    if (port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) fail(`port ${port[1]} is out of range`);
  }
  if (parts.length === 0 || parts.some((p) => p === "")) fail("the repository path is empty or has an empty component");
  for (const p of parts) {
    if (!COMPONENT.test(p)) fail(`repository component ${JSON.stringify(p)} must be lowercase letters and digits, separated by . _ __ or -`);
  }
  if (registry === "docker.io" && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (repository.length > 255) fail("the repository name is longer than 255 characters");
  return { registry, repository, tag, digest };
}

export function formatImageRef(r: ImageRef): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** Hosts we talk plain HTTP to without being asked: loopback only. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Base URL of the registry's HTTP API (Docker Hub's API lives on registry-1.docker.io). */
export function registryBaseUrl(registry: string, insecureRegistries: readonly string[] = []): string {
  const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
  const http = isLoopbackRegistry(registry) || insecureRegistries.includes(registry);
  return `${http ? "http" : "https"}://${host}`;
}
