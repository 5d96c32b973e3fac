import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
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

/** sha256(token) -> grant. Token files are read here, once (a rotated secret needs a restart). */
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
