import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { unpackLayer } from "../../runtime/bake/image/unpack";

type E = { name: string; type?: "file" | "directory" | "symlink"; mode?: number; linkname?: string; body?: string };

async function tarOf(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? "file", mode: e.mode ?? 0o644, linkname: e.linkname, mtime: new Date("2024-01-02T03:04:05Z") }, e.body ?? "");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("bake image: unpacking a layer", () => {
  let tmp: string;
  beforeEach(() => (tmp = mkdtempSync(path.join(os.tmpdir(), "cndb-unpack-"))));
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const write = (name: string, b: Buffer) => {
    const f = path.join(tmp, name);
    writeFileSync(f, b);
    return f;
  };

  it("keeps modes, mtimes and symlinks, fills 0500 directories, and reads gzip too", async () => {
    const t = await tarOf([
      { name: "d", type: "directory", mode: 0o500 },
      { name: "d/f", mode: 0o600, body: "hello" },
      { name: "d/l", type: "symlink", linkname: "f" },
      { name: "d/.wh.gone" },
    ]);
    for (const [name, blob] of [["plain", t], ["gz", gzipSync(t)]] as const) {
      const dest = path.join(tmp, `out-${name}`);
      await unpackLayer(write(`${name}.tar`, blob), dest);
      assert.equal(readFileSync(path.join(dest, "d/f"), "utf8"), "hello");
      assert.equal(lstatSync(path.join(dest, "d/f")).mode & 0o7777, 0o600);
      assert.equal(lstatSync(path.join(dest, "d")).mode & 0o7777, 0o500);
      assert.equal(lstatSync(path.join(dest, "d")).mtime.toISOString(), "2024-01-02T03:04:05.000Z");
      assert.equal(readlinkSync(path.join(dest, "d/l")), "f");
      assert.equal(existsSync(path.join(dest, "d/.wh.gone")), false, "whiteouts are not files");
    }
  });

  it("refuses entries that would land outside the target directory", async () => {
    const escape = await tarOf([{ name: "../escaped", body: "x" }]);
    await assert.rejects(unpackLayer(write("a.tar", escape), path.join(tmp, "a")), /escapes the target directory/);
    const viaLink = await tarOf([
      { name: "l", type: "symlink", linkname: tmp },
      { name: "l/escaped", body: "x" },
    ]);
    await assert.rejects(unpackLayer(write("b.tar", viaLink), path.join(tmp, "b")), /leads outside the target directory through a symlink/);
    assert.equal(existsSync(path.join(tmp, "escaped")), false);
  });
});
