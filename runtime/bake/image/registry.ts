/**
 * A small OCI distribution-spec client over Node's fetch: blob HEAD/GET/upload (with cross-repo
 * mount), manifest GET/PUT, and the auth dance (Basic, or Bearer tokens fetched from the realm of a
 * WWW-Authenticate challenge). Request bodies are factories so a request can be re-sent after a 401.
 * Ours rather than a package: npm's Node clients are pull-only (@snyk/docker-registry-v2-client),
 * barely used and on node-fetch 2 without abort signals (oci-registry-client), or unmaintained on
 * restify/bunyan (docker-registry-client); skopeo would have to ship in the tools image.
 */
import { createReadStream, createWriteStream, renameSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import type { ResolvedAuth } from "./auth";
import { MANIFEST_ACCEPT, sha256 } from "./oci";
import { registryBaseUrl, type ImageRef } from "./reference";

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface ClientOptions {
  auth: ResolvedAuth;
  /** "pull" or "pull,push": the token scope asked for this repository. */
  actions: "pull" | "pull,push";
  insecureRegistries?: readonly string[];
  signal?: AbortSignal;
}

interface Req {
  method: string;
  /** A path under the registry (`/v2/...`) or an absolute URL (upload locations). */
  url: string;
  headers?: Record<string, string>;
  body?: () => AsyncIterable<Uint8Array> | Buffer | undefined;
  /** Statuses that count as success; anything else throws a RegistryError. */
  ok: number[];
  what: string;
  /** Extra token scopes (a cross-repo mount needs pull on the source repository). */
  scopes?: string[];
}

/** WWW-Authenticate: `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1].toLowerCase()] = (p[2] ?? p[3] ?? "").replace(/\\(.)/g, "$1");
  return { scheme: m[1].toLowerCase(), params };
}

export class RegistryClient {
  readonly base: string;
  private authorization: string | undefined;
  private tokenScopes = new Set<string>();

  constructor(
    readonly ref: Pick<ImageRef, "registry" | "repository">,
    private readonly opts: ClientOptions,
  ) {
    this.base = registryBaseUrl(ref.registry, opts.insecureRegistries);
    const a = opts.auth;
    if (a.bearer) this.authorization = `Bearer ${a.bearer}`;
    else if (a.credentials && a.preemptiveBasic) this.authorization = basic(a.credentials.username, a.credentials.password);
  }

  private get repoScope(): string {
    return `repository:${this.ref.repository}:${this.opts.actions}`;
  }

  private async send(r: Req): Promise<Response> {
    const url = r.url.startsWith("http") ? r.url : `${this.base}${r.url}`;
    const body = r.body?.();
    const headers: Record<string, string> = { ...r.headers };
    if (this.authorization) headers.authorization = this.authorization;
    try {
      return await fetch(url, {
        method: r.method,
        headers,
        body: body as RequestInit["body"],
        redirect: "follow",
        signal: this.opts.signal,
        ...(body && !Buffer.isBuffer(body) ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (e) {
      if (this.opts.signal?.aborted) throw this.opts.signal.reason ?? e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new RegistryError(`cannot reach registry ${this.ref.registry} (${this.base}) for ${r.what}: ${cause?.code ?? ""} ${cause?.message ?? (e as Error).message}`.replace(/\s+/g, " ").trim());
    }
  }

  /** Sends a request, answering one auth challenge (401) and retrying once. */
  async request(r: Req): Promise<Response> {
    let res = await this.send(r);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get("www-authenticate"));
      await res.body?.cancel();
      await this.authenticate(challenge, r);
      res = await this.send(r);
      if (res.status === 401) {
        await res.body?.cancel();
        throw new RegistryError(`registry ${this.ref.registry}: authentication failed for ${r.what} (credentials from ${this.opts.auth.source})`, 401, "UNAUTHORIZED");
      }
    }
    if (!r.ok.includes(res.status)) throw await this.errorOf(res, r.what);
    return res;
  }

  private async authenticate(challenge: ReturnType<typeof parseChallenge>, r: Req): Promise<void> {
    const creds = this.opts.auth.credentials;
    const noCreds = () =>
      new RegistryError(`registry ${this.ref.registry} requires authentication for ${r.what}; no credentials (${this.opts.auth.source})`, 401, "UNAUTHORIZED");
    if (challenge?.scheme === "basic") {
      if (!creds) throw noCreds();
      this.authorization = basic(creds.username, creds.password);
      return;
    }
    if (challenge?.scheme !== "bearer" || !challenge.params.realm) {
      throw new RegistryError(`registry ${this.ref.registry} answered 401 to ${r.what} without a usable WWW-Authenticate challenge`, 401);
    }
    for (const s of [this.repoScope, ...(challenge.params.scope ?? "").split(" ").filter(Boolean), ...(r.scopes ?? [])]) this.tokenScopes.add(s);
    const realm = new URL(challenge.params.realm);
    if (realm.protocol !== "https:" && !realm.hostname.match(/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/)) {
      throw new RegistryError(`registry ${this.ref.registry}: refusing to fetch a token over plain HTTP from ${realm.origin}`);
    }
    if (challenge.params.service) realm.searchParams.set("service", challenge.params.service);
    for (const s of this.tokenScopes) realm.searchParams.append("scope", s);
    let res: Response;
    try {
      res = await fetch(realm, { headers: creds ? { authorization: basic(creds.username, creds.password) } : {}, signal: this.opts.signal });
    } catch (e) {
      throw new RegistryError(`registry ${this.ref.registry}: cannot reach its token service ${realm.origin}: ${(e as Error).message}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      if (!creds) throw noCreds();
      throw new RegistryError(`registry ${this.ref.registry}: token service ${realm.origin} refused the credentials from ${this.opts.auth.source}`, res.status, "UNAUTHORIZED");
    }
    if (!res.ok) throw await this.errorOf(res, `a token from ${realm.origin}`);
    const json = (await res.json()) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (!token) throw new RegistryError(`registry ${this.ref.registry}: token service ${realm.origin} returned no token`);
    this.authorization = `Bearer ${token}`;
  }

  private async errorOf(res: Response, what: string): Promise<RegistryError> {
    let detail = "";
    let code: string | undefined;
    try {
      const text = await res.text();
      try {
        const j = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
        code = j.errors?.[0]?.code;
        detail = (j.errors ?? []).map((e) => `${e.code ?? ""} ${e.message ?? ""}`.trim()).join("; ");
      } catch {
        detail = text.slice(0, 300);
      }
    } catch {
      // no body
    }
    return new RegistryError(`registry ${this.ref.registry}: ${what} failed: HTTP ${res.status}${detail ? ` (${detail})` : ""}`, res.status, code);
  }

  private repoPath(kind: "blobs" | "manifests", ref: string): string {
    return `/v2/${this.ref.repository}/${kind}/${ref}`;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.request({ method: "HEAD", url: this.repoPath("blobs", digest), ok: [200, 404], what: `HEAD blob ${digest}` });
    return res.status === 200;
  }

  /** Fetches a manifest (or index) by tag or digest: its exact bytes, media type and digest. */
  async getManifest(reference: string, accept = MANIFEST_ACCEPT): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const what = `GET manifest ${this.ref.repository}:${reference}`;
    const res = await this.request({ method: "GET", url: this.repoPath("manifests", reference), headers: { accept }, ok: [200, 404], what });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError(`registry ${this.ref.registry}: manifest ${this.ref.repository}:${reference} not found`, 404, "MANIFEST_UNKNOWN");
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = sha256(bytes);
    if (reference.startsWith("sha256:") && digest !== reference) throw new RegistryError(`registry ${this.ref.registry}: manifest ${reference} has digest ${digest}`);
    const mediaType = (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType ?? res.headers.get("content-type") ?? "";
    return { bytes, mediaType, digest };
  }

  /** Digest of the manifest a tag points at (as `accept` types), or undefined when there is none. */
  async manifestDigest(reference: string, accept = MANIFEST_ACCEPT): Promise<string | undefined> {
    const res = await this.request({ method: "HEAD", url: this.repoPath("manifests", reference), headers: { accept }, ok: [200, 404], what: `HEAD manifest ${this.ref.repository}:${reference}` });
    return res.status === 200 ? (res.headers.get("docker-content-digest") ?? undefined) : undefined;
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.request({
      method: "PUT",
      url: this.repoPath("manifests", reference),
      headers: { "content-type": mediaType },
      body: () => bytes,
      ok: [201, 200],
      what: `PUT manifest ${this.ref.repository}:${reference}`,
    });
    await res.body?.cancel();
    return res.headers.get("docker-content-digest") ?? sha256(bytes);
  }

  /** Downloads a blob to `file`, checking its digest; `onBytes` sees each chunk's length. */
  async downloadBlob(digest: string, file: string, onBytes: (n: number) => void = () => undefined): Promise<void> {
    const res = await this.request({ method: "GET", url: this.repoPath("blobs", digest), ok: [200], what: `GET blob ${digest}` });
    const hash = createHash("sha256");
    const tmp = `${file}.part`;
    try {
      await pipeline(
        async function* () {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            hash.update(chunk);
            onBytes(chunk.length);
            yield chunk;
          }
        },
        createWriteStream(tmp),
        { signal: this.opts.signal },
      );
      const got = `sha256:${hash.digest("hex")}`;
      if (got !== digest) throw new RegistryError(`registry ${this.ref.registry}: blob ${digest} arrived with digest ${got}`);
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Uploads a blob from a file unless the repository has it: a cross-repo mount when `mountFrom`
   * names a repository of the same registry holding it, else POST + PATCH (one request, or chunks of
   * `chunkSize`) + PUT ?digest=. Returns how it got there.
   */
  async uploadBlob(
    file: string,
    digest: string,
    size: number,
    opts: { onBytes?: (n: number) => void; mountFrom?: string; chunkSize?: number } = {},
  ): Promise<"exists" | "mounted" | "uploaded"> {
    if (await this.hasBlob(digest)) return "exists";
    const uploads = `/v2/${this.ref.repository}/blobs/uploads/`;
    let location: string;
    if (opts.mountFrom && opts.mountFrom !== this.ref.repository) {
      const q = new URLSearchParams({ mount: digest, from: opts.mountFrom });
      const res = await this.request({
        method: "POST",
        url: `${uploads}?${q}`,
        headers: { "content-length": "0" },
        ok: [201, 202],
        what: `mount blob ${digest} from ${opts.mountFrom}`,
        scopes: [`repository:${opts.mountFrom}:pull`],
      });
      await res.body?.cancel();
      if (res.status === 201) return "mounted";
      location = this.locationOf(res);
    } else {
      const res = await this.request({ method: "POST", url: uploads, headers: { "content-length": "0" }, ok: [202], what: `start upload of ${digest}` });
      await res.body?.cancel();
      location = this.locationOf(res);
    }
    const chunk = opts.chunkSize && opts.chunkSize > 0 && opts.chunkSize < size ? opts.chunkSize : size;
    for (let start = 0; start < size; start += chunk) {
      const end = Math.min(size, start + chunk) - 1;
      const counted = () => countBytes(createReadStream(file, { start, end, highWaterMark: 1 << 20 }), opts.onBytes);
      const res = await this.request({
        method: "PATCH",
        url: location,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(end - start + 1),
          ...(chunk < size ? { "content-range": `${start}-${end}` } : {}),
        },
        body: counted,
        ok: [202],
        what: `upload of ${digest} (bytes ${start}-${end})`,
      });
      await res.body?.cancel();
      location = this.locationOf(res);
    }
    const put = new URL(location);
    put.searchParams.set("digest", digest);
    const res = await this.request({ method: "PUT", url: put.href, headers: { "content-length": "0" }, ok: [201], what: `finish upload of ${digest}` });
    await res.body?.cancel();
    const got = res.headers.get("docker-content-digest");
    if (got && got !== digest) throw new RegistryError(`registry ${this.ref.registry}: uploaded ${digest} but the registry stored ${got}`);
    return "uploaded";
  }

  private locationOf(res: Response): string {
    const loc = res.headers.get("location");
    if (!loc) throw new RegistryError(`registry ${this.ref.registry}: upload response has no Location header`);
    return new URL(loc, this.base).href;
  }
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

async function* countBytes(src: AsyncIterable<Buffer>, onBytes?: (n: number) => void): AsyncIterable<Uint8Array> {
  for await (const chunk of src) {
    onBytes?.(chunk.length);
    yield chunk;
  }
}
