import assert from "node:assert/strict";
import { arnRegion, bakePolicy, ECR_PULL_ACTIONS, irsaTrustPolicy } from "../../components/iam";

const input = {
  snapshotRepositoryArn: "arn:aws:ecr:eu-west-1:123456789012:repository/acme-snapshots",
  toolsRepositoryArn: "arn:aws:ecr:eu-west-1:123456789012:repository/acme-tools",
  masterSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1-AbCdEf",
};

describe("IAM policy documents (components/iam.ts)", () => {
  it("allows \"*\" only for ecr:GetAuthorizationToken, which has no resource-level permission", () => {
    const doc = bakePolicy(input);
    const wild = doc.Statement.filter((s) => ([] as string[]).concat(s.Resource ?? []).includes("*"));
    assert.deepEqual(wild.map((s) => s.Action), ["ecr:GetAuthorizationToken"]);
    for (const s of doc.Statement) assert.ok(([] as string[]).concat(s.Action).every((a) => /^[a-z0-9]+:[A-Za-z]+$/.test(a)), `action wildcard in ${s.Sid}`);
  });

  it("pushes only to the snapshot repository and only pulls from the tools repository", () => {
    const doc = bakePolicy(input);
    const bySid = Object.fromEntries(doc.Statement.map((s) => [s.Sid, s]));
    assert.equal(bySid.PushSnapshotImages.Resource, input.snapshotRepositoryArn);
    assert.ok((bySid.PushSnapshotImages.Action as string[]).includes("ecr:PutImage"));
    assert.deepEqual(bySid.PullBaseImage.Action, ECR_PULL_ACTIONS);
    assert.equal(bySid.PullBaseImage.Resource, input.toolsRepositoryArn);
    assert.deepEqual([bySid.ReadMasterSecret.Action, bySid.ReadMasterSecret.Resource], ["secretsmanager:GetSecretValue", input.masterSecretArn]);
    assert.equal(bySid.DecryptMasterSecret, undefined, "no KMS statement without a CMK");
  });

  it("adds kms:Decrypt for a CMK, usable only through Secrets Manager in the secret's region", () => {
    const kms = "arn:aws:kms:eu-west-1:123456789012:key/abc";
    const s = bakePolicy({ ...input, kmsKeyArn: kms }).Statement.find((x) => x.Sid === "DecryptMasterSecret")!;
    assert.deepEqual([s.Action, s.Resource, s.Condition], ["kms:Decrypt", kms, { StringEquals: { "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com" } }]);
  });

  it("trusts exactly one ServiceAccount through the cluster's OIDC provider", () => {
    const doc = irsaTrustPolicy({
      oidcProviderArn: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/XYZ",
      oidcProviderUrl: "https://oidc.eks.eu-west-1.amazonaws.com/id/XYZ",
      namespace: "cndb-acme",
      serviceAccount: "cndb-bake",
    });
    assert.deepEqual(doc.Statement[0].Condition, {
      StringEquals: {
        "oidc.eks.eu-west-1.amazonaws.com/id/XYZ:sub": "system:serviceaccount:cndb-acme:cndb-bake",
        "oidc.eks.eu-west-1.amazonaws.com/id/XYZ:aud": "sts.amazonaws.com",
      },
    });
    assert.deepEqual(doc.Statement[0].Principal, { Federated: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/XYZ" });
  });

  it("reads the region of an ARN and rejects what isn't one", () => {
    assert.equal(arnRegion(input.masterSecretArn), "eu-west-1");
    assert.throws(() => arnRegion("not-an-arn"), /not a regional ARN: not-an-arn/);
  });
});
