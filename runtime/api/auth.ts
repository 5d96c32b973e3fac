import { ApiError } from "./errors";
import { sha256Hex, type RouteGroup, type TokenGrant } from "./config";

/**
 * Bearer-token check. Tokens are known only by their SHA-256, so a lookup by hash leaks nothing
 * through timing. Returns the grant (its name goes to the log, never the token) or throws 401/403.
 */
export function authorize(tokens: Map<string, TokenGrant>, header: string | undefined, group: RouteGroup, queryName?: string): TokenGrant {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header ?? "");
  if (!m) {
    throw new ApiError(401, "unauthorized", header ? "the Authorization header must be: Bearer <token>" : "a bearer token is required (Authorization: Bearer <token>)", "authorization");
  }
  const grant = tokens.get(sha256Hex(m[1]));
  if (!grant) throw new ApiError(401, "unauthorized", "unknown bearer token", "authorization");
  const r = grant.routes;
  const ok = r.has("*") || r.has(group) || (group === "queries" && queryName !== undefined && r.has(`queries/${queryName}`));
  if (!ok) {
    throw new ApiError(403, "forbidden", `token ${grant.name} may not use ${group === "queries" && queryName !== undefined ? `queries/${queryName}` : group}`, "authorization");
  }
  return grant;
}
