import { BakeError } from "./errors";

/** The fields of an RDS secret we use: RDS-managed secrets hold only username and password. */
export interface DbSecret {
  username: string;
  password: string;
  host?: string;
  port?: number;
  dbname?: string;
}

const ARN = /^arn:aws[\w-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:.+$/;

export function secretRegion(arn: string): string {
  const m = ARN.exec(arn);
  if (!m) throw new BakeError("option", `--source-secret-arn: ${JSON.stringify(arn)} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)`);
  return m[1];
}

/** Parses the secret's JSON; the error names the missing field, never a value. */
export function parseDbSecret(text: string | undefined, arn: string): DbSecret {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text ?? "");
  } catch {
    throw new BakeError("option", `--source-secret-arn ${arn}: the secret is not a JSON object with username and password`);
  }
  if (typeof j !== "object" || j === null) throw new BakeError("option", `--source-secret-arn ${arn}: the secret is not a JSON object`);
  for (const k of ["username", "password"]) {
    if (typeof j[k] !== "string" || !j[k]) throw new BakeError("option", `--source-secret-arn ${arn}: the secret has no "${k}" string`);
  }
  const port = j.port === undefined ? undefined : Number(j.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new BakeError("option", `--source-secret-arn ${arn}: "port" is not a TCP port`);
  }
  return {
    username: j.username as string,
    password: j.password as string,
    host: typeof j.host === "string" ? j.host : undefined,
    port,
    dbname: typeof j.dbname === "string" ? j.dbname : undefined,
  };
}

/**
 * The source URL with the secret's credentials: the secret's username and password win; host, port and
 * database come from --source when given there, else from the secret.
 */
export function mergeSecret(source: string | undefined, s: DbSecret): string {
  const u = new URL(source ?? "postgres://placeholder");
  if (!source) {
    if (!s.host) throw new BakeError("option", "--source is required: the secret names no host");
    u.hostname = s.host;
  }
  if (!u.port && s.port) u.port = String(s.port);
  if ((!u.pathname || u.pathname === "/") && s.dbname) u.pathname = `/${encodeURIComponent(s.dbname)}`;
  u.username = encodeURIComponent(s.username);
  u.password = encodeURIComponent(s.password);
  return u.toString();
}

/** Fetches the secret with the default AWS credential chain (IRSA in the bake Job). */
export async function fetchDbSecret(arn: string, signal?: AbortSignal): Promise<DbSecret> {
  const region = secretRegion(arn);
  const { SecretsManagerClient, GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
  const client = new SecretsManagerClient({ region });
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: arn }), { abortSignal: signal });
    return parseDbSecret(out.SecretString, arn);
  } catch (e) {
    if (e instanceof BakeError) throw e;
    throw new BakeError("source-auth", `--source-secret-arn ${arn}: cannot read the secret: ${(e as Error).message}`);
  } finally {
    client.destroy();
  }
}
