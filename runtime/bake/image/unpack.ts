/**
 * Unpacks one layer blob (tar or tar+gzip) into a directory, keeping modes, mtimes and (as root)
 * numeric owners: what a container runtime does with the data layer.
 */
import { chmodSync, chownSync, createReadStream, createWriteStream, lchownSync, linkSync, mkdirSync, openSync, readSync, closeSync, realpathSync, symlinkSync, utimesSync } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";

function isGzip(file: string): boolean {
  const fd = openSync(file, "r");
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Resolves an entry name under `dest`, refusing absolute names and `..` escapes. */
function target(dest: string, name: string): string {
  const rel = path.posix.normalize(name.replace(/^\.\/+/, ""));
  if (path.posix.isAbsolute(rel) || rel === ".." || rel.startsWith("../")) throw new Error(`layer entry ${JSON.stringify(name)} escapes the target directory`);
  return path.join(dest, rel);
}

export async function unpackLayer(file: string, dest: string, opts: { signal?: AbortSignal } = {}): Promise<{ entries: number }> {
  mkdirSync(dest, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const realDest = realpathSync(dest);
  const extract = tar.extract();
  const dirs: { p: string; mode: number; mtime: Date }[] = [];
  let entries = 0;
  const consume = (async () => {
    for await (const entry of extract) {
      opts.signal?.throwIfAborted();
      const h = entry.header;
      const p = target(dest, h.name);
      const base = path.basename(p);
      entries++;
      if (base.startsWith(".wh.")) {
        entry.resume(); // whiteouts delete lower-layer files: nothing below us here
        continue;
      }
      mkdirSync(path.dirname(p), { recursive: true });
      // a symlink from an earlier entry must not lead a later one out of dest
      if (!(realpathSync(path.dirname(p)) + path.sep).startsWith(realDest + path.sep)) throw new Error(`layer entry ${JSON.stringify(h.name)} leads outside the target directory through a symlink`);
      if (h.type === "directory") {
        mkdirSync(p, { recursive: true });
        dirs.push({ p, mode: h.mode, mtime: h.mtime });
        entry.resume();
      } else if (h.type === "file" || h.type === "contiguous-file") {
        await pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(p, { mode: h.mode & 0o7777 }));
        chmodSync(p, h.mode & 0o7777);
        utimesSync(p, h.mtime, h.mtime);
      } else if (h.type === "symlink") {
        symlinkSync(h.linkname, p);
        entry.resume();
      } else if (h.type === "link") {
        linkSync(target(dest, h.linkname), p);
        entry.resume();
        continue;
      } else {
        entry.resume();
        continue;
      }
      if (asRoot) (h.type === "symlink" ? lchownSync : chownSync)(p, h.uid, h.gid);
    }
  })();
  const source = createReadStream(file);
  await Promise.all([
    isGzip(file) ? pipeline(source, createGunzip(), extract as unknown as NodeJS.WritableStream, { signal: opts.signal }) : pipeline(source, extract as unknown as NodeJS.WritableStream, { signal: opts.signal }),
    consume,
  ]);
  // Directories last: writing their children moved their mtimes, and a 0500 dir would have refused them.
  for (const d of dirs.reverse()) {
    chmodSync(d.p, d.mode & 0o7777);
    utimesSync(d.p, d.mtime, d.mtime);
  }
  return { entries };
}
