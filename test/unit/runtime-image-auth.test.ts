import assert from "node:assert/strict";
import { GetAuthorizationTokenCommand, type GetAuthorizationTokenCommandOutput } from "@aws-sdk/client-ecr";
import { decodeEcrToken, parseEcrHost, resolveAuth, type EcrTokenSource } from "../../runtime/bake/image/auth";
import { parseChallenge } from "../../runtime/bake/image/registry";

/** Stands in for ECRClient (AWS is not reachable here): records the commands it is sent. */
class StubEcr implements EcrTokenSource {
  sent: unknown[] = [];
  constructor(private readonly answer: GetAuthorizationTokenCommandOutput | Error) {}
  async send(command: GetAuthorizationTokenCommand): Promise<GetAuthorizationTokenCommandOutput> {
    this.sent.push(command);
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }
}

const token = (s: string): GetAuthorizationTokenCommandOutput => ({
  $metadata: {},
  authorizationData: [{ authorizationToken: Buffer.from(s).toString("base64"), expiresAt: new Date("2030-01-01T00:00:00Z"), proxyEndpoint: "https://x" }],
});

describe("bake image: registry auth", () => {
  it("recognises ECR registry hosts (account, region; fips and China partitions) and nothing else", () => {
    assert.deepEqual(parseEcrHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), { accountId: "123456789012", region: "eu-west-1" });
    assert.deepEqual(parseEcrHost("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"), { accountId: "123456789012", region: "us-gov-west-1" });
    assert.deepEqual(parseEcrHost("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"), { accountId: "123456789012", region: "cn-north-1" });
    for (const h of ["12345.dkr.ecr.eu-west-1.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io", "public.ecr.aws", "ghcr.io", "127.0.0.1:5000", "123456789012.dkr.ecr.amazonaws.com"]) {
      assert.equal(parseEcrHost(h), undefined, h);
    }
  });

  it("decodes an ECR authorization token into user AWS and its password", () => {
    assert.deepEqual(decodeEcrToken(token("AWS:pa:ss=word")), { username: "AWS", password: "pa:ss=word", expiresAt: new Date("2030-01-01T00:00:00Z") });
    assert.throws(() => decodeEcrToken({ $metadata: {}, authorizationData: [] }), /no authorization token/);
    assert.throws(() => decodeEcrToken(token("no-colon")), /not of the form <user>:<password>/);
  });

  it("asks ECR for a token for an ECR host, to be sent as Basic from the first request", async () => {
    const ecr = new StubEcr(token("AWS:ecr-pw"));
    const a = await resolveAuth("123456789012.dkr.ecr.eu-west-1.amazonaws.com", { kind: "ecr", client: ecr }, {});
    assert.deepEqual(a.credentials, { username: "AWS", password: "ecr-pw" });
    assert.equal(a.preemptiveBasic, true);
    assert.match(a.source, /ECR authorization token \(eu-west-1\)/);
    assert.equal(ecr.sent.length, 1);
    assert.ok(ecr.sent[0] instanceof GetAuthorizationTokenCommand);
    assert.doesNotMatch(a.source, /ecr-pw/);
  });

  it("says what is wrong when ECR refuses, and refuses ecr auth for a non-ECR host", async () => {
    const ecr = new StubEcr(new Error("The security token included in the request is invalid"));
    await assert.rejects(resolveAuth("123456789012.dkr.ecr.eu-west-1.amazonaws.com", { kind: "ecr", client: ecr }, {}), /ECR: GetAuthorizationToken in eu-west-1 failed .*ecr:GetAuthorizationToken.*token included/);
    await assert.rejects(resolveAuth("ghcr.io", { kind: "ecr", client: ecr }, {}), /ghcr.io is not an ECR registry host/);
  });

  it("takes credentials from the environment, both or neither, and otherwise goes anonymous", async () => {
    const env = { CNDB_REGISTRY_USER: "u", CNDB_REGISTRY_PASSWORD: "p" };
    assert.deepEqual((await resolveAuth("r.io", undefined, env)).credentials, { username: "u", password: "p" });
    // explicit env credentials win over ECR's token (no AWS call)
    const ecrHost = await resolveAuth("123456789012.dkr.ecr.eu-west-1.amazonaws.com", undefined, env);
    assert.deepEqual(ecrHost.credentials, { username: "u", password: "p" });
    await assert.rejects(resolveAuth("r.io", undefined, { CNDB_REGISTRY_USER: "u" }), /set both CNDB_REGISTRY_USER and CNDB_REGISTRY_PASSWORD/);
    const anon = await resolveAuth("r.io", undefined, {});
    assert.equal(anon.credentials, undefined);
    assert.equal((await resolveAuth("r.io", { kind: "anonymous" }, env)).credentials, undefined);
    assert.equal((await resolveAuth("r.io", { kind: "bearer", token: "t" }, {})).bearer, "t");
  });

  it("parses WWW-Authenticate challenges", () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/postgres:pull"'), {
      scheme: "bearer",
      params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/postgres:pull" },
    });
    assert.deepEqual(parseChallenge('Basic realm="x \\"y\\""'), { scheme: "basic", params: { realm: 'x "y"' } });
    assert.equal(parseChallenge(null), undefined);
  });
});
