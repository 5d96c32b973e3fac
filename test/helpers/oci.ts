/** Reading OCI layouts and layer tars back in tests, independently of the code that wrote them. */
import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";

export function layoutJson<T = any>(dir: string, file: string): T {
  return JSON.parse(readFileSync(path.join(dir, file), "utf8")) as T;
}

export function blobFile(dir: string, digest: string): string {
  return path.join(dir, "blobs", "sha256", digest.replace(/^sha256:/, ""));
}

export function blobJson<T = any>(dir: string, digest: string): T {
  return JSON.parse(readFileSync(blobFile(dir, digest), "utf8")) as T;
}

export function fileDigest(file: string): string {
  return `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
}

export function gunzipDigest(file: string): Promise<string> {
  const h = createHash("sha256");
  return pipeline(createReadStream(file), createGunzip(), async function (src: AsyncIterable<Buffer>) {
    for await (const c of src) h.update(c);
  }).then(() => `sha256:${h.digest("hex")}`);
}

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  size: number;
}

/** The headers of a tar (gzipped or not), in order. */
export async function tarEntries(file: string): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const ex = tar.extract();
  const gz = readFileSync(file).subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]));
  const reading = (async () => {
    for await (const e of ex) {
      const h = e.header;
      out.push({ name: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, uname: h.uname, gname: h.gname, mtime: h.mtime.getTime(), size: h.size });
      e.resume();
    }
  })();
  const src = createReadStream(file);
  await Promise.all([gz ? pipeline(src, createGunzip(), ex as unknown as NodeJS.WritableStream) : pipeline(src, ex as unknown as NodeJS.WritableStream), reading]);
  return out;
}
