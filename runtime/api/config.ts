import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { type ApiConfig, parseConfig } from "../../common/api-config";

// The schema and its types live in common/ (the deploy validates the stack's `api` key with them too).
export { ApiConfigSchema, type ApiConfig, type ApiConfigInput, type NamedQuery, parseConfig, ROUTE_GROUPS, type RouteGroup } from "../../common/api-config";

export function loadConfig(file: string): ApiConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`config ${file}: cannot read: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`config ${file}: not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(json, `config ${file}`);
}

export const sha256Hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

export interface TokenGrant {
  name: string;
  /** "*" or route groups / `queries/<name>`. */
  routes: Set<string>;
}

/** sha256(token) -> grant, token files read now (TokenStore follows later changes). */
export function resolveTokens(config: ApiConfig): Map<string, TokenGrant> | undefined {
  if (!config.auth) return undefined;
  const map = new Map<string, TokenGrant>();
  config.auth.tokens.forEach((t, i) => {
    let hash = t.sha256?.toLowerCase();
    if (t.file !== undefined) {
      let token: string;
      try {
        token = readFileSync(t.file, "utf8").replace(/\r?\n$/, "");
      } catch (e) {
        throw new Error(`config: auth.tokens.${i}.file: cannot read ${t.file}: ${(e as Error).message}`);
      }
      if (!token) throw new Error(`config: auth.tokens.${i}.file: ${t.file} is empty`);
      hash = sha256Hex(token);
    }
    map.set(hash!, { name: t.name, routes: new Set(t.routes) });
  });
  return map;
}

/** How often token files are checked for a change (a rotated Kubernetes Secret). */
export const TOKEN_RECHECK_MS = 2000;

/**
 * The grants, following rotated token files: at most every TOKEN_RECHECK_MS, a change in any file's
 * inode, size or mtime (a Secret volume swaps its files atomically) re-reads them all. A re-read that
 * fails (a file gone or empty mid-rotation) keeps the last good grants and is retried next time.
 */
export class TokenStore {
  private grants: Map<string, TokenGrant>;
  private stamp: string;
  private checkedAt = Date.now();
  private readonly files: string[];

  private constructor(
    private readonly config: ApiConfig,
    private readonly onReload?: (ok: boolean, message: string) => void,
  ) {
    this.files = (config.auth?.tokens ?? []).flatMap((t) => (t.file !== undefined ? [t.file] : []));
    this.grants = resolveTokens(config)!;
    this.stamp = this.fileStamp();
  }

  /** undefined when the config has no auth (every route is open). */
  static from(config: ApiConfig, onReload?: (ok: boolean, message: string) => void): TokenStore | undefined {
    return config.auth ? new TokenStore(config, onReload) : undefined;
  }

  current(now = Date.now()): Map<string, TokenGrant> {
    if (this.files.length && now - this.checkedAt >= TOKEN_RECHECK_MS) {
      this.checkedAt = now;
      const stamp = this.fileStamp();
      if (stamp !== this.stamp) {
        try {
          this.grants = resolveTokens(this.config)!;
          this.stamp = stamp;
          this.onReload?.(true, `token files changed: ${this.grants.size} tokens loaded`);
        } catch (e) {
          this.onReload?.(false, `token files changed but cannot be loaded, keeping the previous tokens: ${(e as Error).message}`);
        }
      }
    }
    return this.grants;
  }

  private fileStamp(): string {
    return this.files
      .map((f) => {
        try {
          const st = statSync(f);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch {
          return "missing";
        }
      })
      .join("|");
  }
}
