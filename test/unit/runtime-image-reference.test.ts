import assert from "node:assert/strict";
import { formatImageRef, isLoopbackRegistry, parseImageRef, registryBaseUrl } from "../../runtime/bake/image/reference";

const D = `sha256:${"a".repeat(64)}`;

describe("bake image: image references", () => {
  it("parses registry, repository, tag and digest like docker does", () => {
    const cases: [string, ReturnType<typeof parseImageRef>][] = [
      ["postgres", { registry: "docker.io", repository: "library/postgres", tag: undefined, digest: undefined }],
      ["postgres:15-bookworm", { registry: "docker.io", repository: "library/postgres", tag: "15-bookworm", digest: undefined }],
      ["bitnami/postgresql:15", { registry: "docker.io", repository: "bitnami/postgresql", tag: "15", digest: undefined }],
      ["127.0.0.1:5000/db", { registry: "127.0.0.1:5000", repository: "db", tag: undefined, digest: undefined }],
      ["localhost/a/b/c:v1.2", { registry: "localhost", repository: "a/b/c", tag: "v1.2", digest: undefined }],
      [`123456789012.dkr.ecr.eu-west-1.amazonaws.com/snapshots@${D}`, { registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", repository: "snapshots", tag: undefined, digest: D }],
      [`ghcr.io/o/r:t@${D}`, { registry: "ghcr.io", repository: "o/r", tag: "t", digest: D }],
      ["[::1]:5000/x_y__z-w", { registry: "[::1]:5000", repository: "x_y__z-w", tag: undefined, digest: undefined }],
      ["r.io/a:20240102T030405Z-abcdef", { registry: "r.io", repository: "a", tag: "20240102T030405Z-abcdef", digest: undefined }],
    ];
    for (const [ref, want] of cases) assert.deepEqual(parseImageRef(ref), want, ref);
    assert.equal(formatImageRef(parseImageRef("postgres:15")), "docker.io/library/postgres:15");
  });

  it("rejects bad references naming the option, the reason and the expected form", () => {
    const bad: [string, RegExp][] = [
      ["", /it is empty/],
      [" x", /whitespace/],
      ["https://r.io/a", /drop the URL scheme/],
      ["Upper/case", /repository component "Upper"/],
      ["r.io/a//b", /empty component/],
      ["r.io/", /empty component/],
      ["r.io/a:", /bad tag ""/],
      ["r.io/a:-x", /bad tag "-x"/],
      [`r.io/a:${"t".repeat(129)}`, /bad tag/],
      ["r.io/a@sha256:abc", /bad digest/],
      [`r.io/a@sha256:${"A".repeat(64)}`, /64 lowercase hex/],
      ["r.io:70000/a", /port 70000 is out of range/],
      ["r_io.com/a", /bad registry host/],
      [`r.io/${"a".repeat(256)}`, /longer than 255/],
    ];
    for (const [ref, why] of bad) {
      assert.throws(() => parseImageRef(ref, "--push"), (e: Error) => {
        assert.match(e.message, /^--push: invalid image reference /, ref);
        assert.match(e.message, why, ref);
        assert.match(e.message, /expected \[registry\[:port\]\/\]repository\[:tag\]/);
        return true;
      });
    }
  });

  it("talks plain HTTP to loopback registries and to those listed as insecure, HTTPS to the rest", () => {
    assert.equal(registryBaseUrl("127.0.0.1:5000"), "http://127.0.0.1:5000");
    assert.equal(registryBaseUrl("localhost:5000"), "http://localhost:5000");
    assert.equal(registryBaseUrl("[::1]:5000"), "http://[::1]:5000");
    assert.equal(registryBaseUrl("10.0.0.5:5000"), "https://10.0.0.5:5000");
    assert.equal(registryBaseUrl("10.0.0.5:5000", ["10.0.0.5:5000"]), "http://10.0.0.5:5000");
    assert.equal(registryBaseUrl("docker.io"), "https://registry-1.docker.io");
    assert.equal(registryBaseUrl("127.0.0.1.nip.io"), "https://127.0.0.1.nip.io");
    assert.equal(isLoopbackRegistry("127.3.4.5"), true);
    assert.equal(isLoopbackRegistry("localhost.example.com"), false);
  });
});
