import type { z } from "zod";
import { ApiConfigSchema } from "../common/api-config";
import { ArgsError } from "./validate";

/**
 * The read API's settings as the fleet deploys them (api.json in a ConfigMap, tokens in a Secret).
 * Pure, so the stack config (config.ts) and the ReadFleet component check them the same way, with the
 * read API's own schema (common/api-config.ts): `pulumi preview` fails on what the API would refuse at start.
 */

/** Where the API finds its settings and (optionally) its token files. */
export const API_CONFIG_DIR = "/etc/cndb";
export const API_CONFIG_FILE = `${API_CONFIG_DIR}/api.json`;
export const API_TOKENS_DIR = `${API_CONFIG_DIR}/secrets`;

/** A problem in the API settings: its key path within them, and the same issue shape zod reports. */
export type ApiSettingsIssue = z.core.$ZodIssue;

const TOKEN_NAME = /^[-._a-zA-Z0-9]{1,63}$/;

function issue(path: PropertyKey[], message: string, input?: unknown): ApiSettingsIssue {
  return { code: "custom", path, message, input } as ApiSettingsIssue;
}

/**
 * api.json from the stack's API settings: every `auth.tokens` entry that names neither `sha256` nor
 * `file` gets `file: /etc/cndb/secrets/<name>` (the mounted token Secret); `secretTokenNames` lists
 * them. `issues` holds the deploy's own rules (no plain tokens, names usable as Secret keys) and then
 * the read API's schema applied to the result, so a filled-in token validates like one given a file.
 */
export function apiSettings(config: Record<string, unknown>): { config: Record<string, unknown>; secretTokenNames: string[]; issues: ApiSettingsIssue[] } {
  const names: string[] = [];
  const issues: ApiSettingsIssue[] = [];
  const auth = config.auth as { tokens?: unknown } | undefined;
  let out = config;
  if (auth !== undefined) {
    if (typeof auth !== "object" || auth === null || !Array.isArray(auth.tokens)) {
      issues.push(issue(["auth"], "must be an object with a tokens array"));
    } else {
      const tokens = auth.tokens.map((t: unknown, i: number) => {
        const at = ["auth", "tokens", i];
        if (typeof t !== "object" || t === null || Array.isArray(t)) {
          issues.push(issue(at, "must be an object"));
          return t;
        }
        const e = t as Record<string, unknown>;
        if ("token" in e) issues.push(issue([...at, "token"], "must not be set: a token never goes into the ConfigMap (use apiTokens)"));
        if (typeof e.name !== "string" || !TOKEN_NAME.test(e.name)) {
          issues.push(issue([...at, "name"], `must be 1-63 characters of letters, digits, "-", "_" and "."`, e.name));
          return e;
        }
        if (e.sha256 !== undefined || e.file !== undefined) return e;
        if (names.includes(e.name)) issues.push(issue([...at, "name"], `is used twice ("${e.name}")`));
        else names.push(e.name);
        return { ...e, file: `${API_TOKENS_DIR}/${e.name}` };
      });
      out = { ...config, auth: { ...auth, tokens } };
    }
  }
  // The schema would repeat the deploy's findings less clearly (e.g. `token` as an unknown key): only without them.
  if (issues.length === 0) {
    const r = ApiConfigSchema.safeParse(out, { reportInput: true });
    if (!r.success) issues.push(...r.error.issues);
  }
  return { config: out, secretTokenNames: names, issues };
}

function got(input: unknown): string {
  if (input === undefined || (typeof input === "object" && input !== null)) return "";
  const s = JSON.stringify(input);
  return ` (got ${s.length > 60 ? `${s.slice(0, 57)}...` : s})`;
}

/** api.json text and the token names it reads from the Secret; throws ArgsError(`<where>`, `apiConfig.<path>`) on the first issue. */
export function renderApiConfig(config: Record<string, unknown>, where = "ReadFleet"): { json: string; secretTokenNames: string[] } {
  const r = apiSettings(config);
  const first = r.issues[0];
  if (first) {
    const field = ["apiConfig", ...first.path.map(String)].join(".");
    const detail = first.code === "unrecognized_keys" ? `has unknown key(s) ${first.keys.join(", ")}` : first.message;
    const text = /^(must|is|has|declares|give) /.test(detail) ? detail : `is invalid: ${detail}`;
    throw new ArgsError(where, field, text.includes("(got ") ? text : `${text}${got((first as { input?: unknown }).input)}`);
  }
  return { json: JSON.stringify(r.config, null, 2), secretTokenNames: r.secretTokenNames };
}
