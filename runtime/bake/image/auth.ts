/**
 * Registry credentials: explicit, from the environment (CNDB_REGISTRY_USER / CNDB_REGISTRY_PASSWORD),
 * or for Amazon ECR a short-lived authorization token from the AWS SDK (user "AWS"). A registry that
 * answers with a Bearer challenge gets these credentials at its token endpoint instead.
 */
import { ECRClient, GetAuthorizationTokenCommand, type GetAuthorizationTokenCommandOutput } from "@aws-sdk/client-ecr";

export interface Credentials {
  username: string;
  password: string;
}

export type RegistryAuth =
  /** Never send credentials. */
  | { kind: "anonymous" }
  | ({ kind: "basic" } & Credentials)
  /** A ready bearer token (e.g. from a CI system). */
  | { kind: "bearer"; token: string }
  /** Amazon ECR: credentials from GetAuthorizationToken (the default for *.dkr.ecr.*.amazonaws.com). */
  | { kind: "ecr"; client?: EcrTokenSource };

/** The part of ECRClient we use; tests pass a stub. */
export interface EcrTokenSource {
  send(command: GetAuthorizationTokenCommand): Promise<GetAuthorizationTokenCommandOutput>;
}

export const ENV_USER = "CNDB_REGISTRY_USER";
export const ENV_PASSWORD = "CNDB_REGISTRY_PASSWORD";

export interface EcrHost {
  accountId: string;
  region: string;
}

/** `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` -> account and region; anything else -> undefined. */
export function parseEcrHost(registry: string): EcrHost | undefined {
  const m = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/.exec(registry.replace(/:443$/, ""));
  return m ? { accountId: m[1], region: m[2] } : undefined;
}

/** GetAuthorizationToken's token is base64("AWS:<password>"). */
export function decodeEcrToken(out: GetAuthorizationTokenCommandOutput): Credentials & { expiresAt?: Date } {
  const data = out.authorizationData?.[0];
  if (!data?.authorizationToken) throw new Error("ECR GetAuthorizationToken returned no authorization token");
  const decoded = Buffer.from(data.authorizationToken, "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i <= 0 || i === decoded.length - 1) throw new Error("ECR authorization token is not of the form <user>:<password> once base64-decoded");
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1), expiresAt: data.expiresAt };
}

export async function ecrCredentials(host: EcrHost, source?: EcrTokenSource): Promise<Credentials> {
  const client = source ?? new ECRClient({ region: host.region });
  let out: GetAuthorizationTokenCommandOutput;
  try {
    out = await client.send(new GetAuthorizationTokenCommand({}));
  } catch (e) {
    throw new Error(`ECR: GetAuthorizationToken in ${host.region} failed (needs AWS credentials allowed ecr:GetAuthorizationToken): ${(e as Error).message}`);
  }
  const { username, password } = decodeEcrToken(out);
  return { username, password };
}

/** What we send: credentials to use for Basic (or at a token endpoint), a fixed bearer token, or nothing. */
export interface ResolvedAuth {
  credentials?: Credentials;
  bearer?: string;
  /** Send Basic on the first request instead of waiting for a challenge (ECR). */
  preemptiveBasic?: boolean;
  /** Where the credentials came from, for error messages (never the secret itself). */
  source: string;
}

export async function resolveAuth(registry: string, auth?: RegistryAuth, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedAuth> {
  if (auth?.kind === "anonymous") return { source: "anonymous" };
  if (auth?.kind === "basic") return { credentials: { username: auth.username, password: auth.password }, source: "the given user/password" };
  if (auth?.kind === "bearer") return { bearer: auth.token, source: "the given bearer token" };
  const ecr = parseEcrHost(registry);
  if (auth?.kind === "ecr" && !ecr) throw new Error(`registry auth "ecr": ${registry} is not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com)`);
  const user = env[ENV_USER];
  const password = env[ENV_PASSWORD];
  if (auth === undefined && (user || password)) {
    if (!user || !password) throw new Error(`registry auth: set both ${ENV_USER} and ${ENV_PASSWORD}, or neither`);
    return { credentials: { username: user, password }, source: `${ENV_USER}/${ENV_PASSWORD}` };
  }
  if (ecr) {
    const credentials = await ecrCredentials(ecr, auth?.kind === "ecr" ? auth.client : undefined);
    return { credentials, preemptiveBasic: true, source: `an ECR authorization token (${ecr.region})` };
  }
  return { source: `anonymous access (set ${ENV_USER}/${ENV_PASSWORD} for a registry that needs credentials)` };
}
