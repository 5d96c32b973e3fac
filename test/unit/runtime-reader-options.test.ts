import assert from "node:assert/strict";
import net from "node:net";
import { replicaUrl } from "../../runtime/reader/index";
import { canMount, overlayOptions, parseMountPoints } from "../../runtime/reader/mounts";
import { checkPortFree, DEFAULT_WARMUP, ReplicaOptionError, resolveOptions } from "../../runtime/reader/options";

const optionError = (field: string, re: RegExp) => (e: unknown) =>
  e instanceof ReplicaOptionError && e.field === field && re.test(e.message);

describe("runtime/reader options", () => {
  it("fills in defaults", () => {
    const o = resolveOptions({ snapshot: "/s", port: 5432 });
    assert.equal(o.listen, "127.0.0.1");
    assert.equal(o.warmup, DEFAULT_WARMUP);
    assert.equal(o.inPlace, false);
    assert.equal(o.workingCopy, "auto");
  });

  it("names the field and the allowed values for bad input", () => {
    assert.throws(() => resolveOptions({ snapshot: "", port: 1 }), optionError("snapshot", /required/));
    for (const port of [0, 65536, 1.5, NaN]) {
      assert.throws(() => resolveOptions({ snapshot: "/s", port }), optionError("port", /integer from 1 to 65535/));
    }
    assert.throws(() => resolveOptions({ snapshot: "/s", port: 1, warmup: "hot" as never }), optionError("warmup", /one of full, files, none \(got "hot"\)/));
    assert.throws(() => resolveOptions({ snapshot: "/s", port: 1, workingCopy: "zfs" as never }), optionError("workingCopy", /auto, overlay, fuse-overlayfs, copy/));
    assert.throws(() => resolveOptions({ snapshot: "/s", port: 1, listen: "1.2.3.4; rm" }), optionError("listen", /not an IP address/));
    assert.throws(() => resolveOptions({ snapshot: "/s", port: 1, inPlace: true, workDir: "/w" }), optionError("workDir", /inPlace/));
    assert.throws(() => resolveOptions({ snapshot: "/s", port: 1, readyFile: "" }), optionError("readyFile", /non-empty/));
  });

  it("accepts listen lists, * and the socket only", () => {
    for (const listen of ["", "*", "127.0.0.1,::1", "localhost"]) assert.equal(resolveOptions({ snapshot: "/s", port: 1, listen }).listen, listen);
  });

  it("reports a port in use as a --port problem", async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as net.AddressInfo).port;
    try {
      await assert.rejects(checkPortFree("127.0.0.1", port), optionError("port", new RegExp(`127.0.0.1:${port} is already in use`)));
    } finally {
      s.close();
    }
    await checkPortFree("127.0.0.1", port);
    await checkPortFree("", port); // socket only: no TCP port to check
  });
});

describe("runtime/reader mounts", () => {
  it("reads mount points from mountinfo, undoing octal escapes", () => {
    const text = [
      "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw",
      "44 22 0:39 / /tmp/a\\040b/pgdata rw,relatime - overlay overlay rw,lowerdir=/s",
      "",
    ].join("\n");
    assert.deepEqual(parseMountPoints(text), ["/", "/tmp/a b/pgdata"]);
  });

  it("builds overlay options and refuses paths the option syntax cannot carry", () => {
    assert.equal(overlayOptions("/l", "/u", "/w", ["metacopy=on"]), "lowerdir=/l,upperdir=/u,workdir=/w,metacopy=on");
    assert.equal(overlayOptions("/a,b", "/u", "/w"), undefined);
    assert.equal(overlayOptions("/l", "/u:x", "/w"), undefined);
  });

  it("may mount as root or with CAP_SYS_ADMIN only", () => {
    assert.equal(canMount("", 0), true);
    assert.equal(canMount("CapEff:\t0000000000000000\n", 1000), false);
    assert.equal(canMount("CapEff:\t0000000000200000\n", 1000), true);
    assert.equal(canMount("CapEff:\t00000000001fffff\n", 1000), false);
  });
});

describe("runtime/reader replicaUrl", () => {
  it("points at the snapshot's database on the listen address", () => {
    assert.equal(replicaUrl("127.0.0.1", 5432, "/s", "app", "reader"), "postgres://reader@127.0.0.1:5432/app");
    assert.equal(replicaUrl("*", 5, "/s", "app", "u", "p@ss"), "postgres://u:p%40ss@127.0.0.1:5/app");
    assert.equal(replicaUrl("::1", 5, "/s", "app", "u"), "postgres://u@[::1]:5/app");
    assert.equal(replicaUrl("", 5, "/run/x", "app", "u"), "postgres://u@localhost:5/app?host=%2Frun%2Fx");
    // the baked pg_hba admits the superuser over the socket only
    assert.equal(replicaUrl("127.0.0.1", 5, "/run/x", "app", "postgres"), "postgres://postgres@localhost:5/app?host=%2Frun%2Fx");
  });
});
