/**
 * The data layer: a deterministic tar of the snapshot dir (snapshot.json + pgdata/) placed at
 * IMAGE_SNAPSHOT_DIR. Same files, owners and modes in => same bytes out: entries in sorted order,
 * one fixed mtime, numeric owners only (no uname/gname), no atime/ctime. Optionally gzip (a gzip
 * stream from node:zlib has mtime 0 and no file name in its header, so it is deterministic too).
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, lstatSync, readdirSync, readlinkSync, renameSync, rmSync, type Stats } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import * as tar from "tar-stream";
import { IMAGE_SNAPSHOT_DIR } from "../../../common/contract";
import { MT } from "./oci";
import { progressThrottle, type Progress } from "./progress";

export interface LayerBlob {
  mediaType: string;
  /** Digest of the blob as stored (compressed when gzip). */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  /** Path of the blob file. */
  file: string;
}

export interface LayerOptions {
  snapshotDir: string;
  /** Directory the blob is written to, named by its digest. */
  blobsDir: string;
  /** Every entry's mtime (seconds resolution). */
  mtime: Date;
  compress?: boolean;
  /** gzip level; 1 is several times faster than the default 6 and PGDATA still shrinks well. @default 1 */
  gzipLevel?: number;
  /** Owner written for every entry under the snapshot dir; by default each file's own uid/gid. */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
  onProgress?: (e: Progress) => void;
}

/** What goes into the layer from a snapshot dir (anything else there, e.g. image/, stays out). */
export const LAYER_MEMBERS = ["snapshot.json", "pgdata"] as const;

interface Entry {
  abs: string;
  name: string;
  st: Stats;
  /** Mode written instead of the file's own. */
  mode?: number;
}

function collect(snapshotDir: string): Entry[] {
  const prefix = IMAGE_SNAPSHOT_DIR.replace(/^\/+/, "");
  const out: Entry[] = [];
  const walk = (abs: string, name: string) => {
    const st = lstatSync(abs);
    if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) {
      throw new Error(`image layer: ${abs} is neither a file, a directory nor a symlink (sockets, fifos and devices are not baked)`);
    }
    if (st.isSymbolicLink()) {
      // e.g. a pg_wal or tablespace link to another disk: its target would not be in the image
      const to = path.resolve(path.dirname(abs), readlinkSync(abs));
      if (path.isAbsolute(readlinkSync(abs)) || !to.startsWith(path.resolve(snapshotDir) + path.sep)) {
        throw new Error(`image layer: ${abs} is a symlink to ${readlinkSync(abs)}, outside the snapshot dir; it would dangle in the image`);
      }
    }
    out.push({ abs, name, st });
    if (st.isDirectory()) {
      for (const e of readdirSync(abs).sort(byteOrder)) walk(path.join(abs, e), `${name}/${e}`);
    }
  };
  for (const m of LAYER_MEMBERS) {
    const abs = path.join(snapshotDir, m);
    try {
      lstatSync(abs);
    } catch {
      throw new Error(`image layer: ${abs} is missing (a snapshot dir holds ${LAYER_MEMBERS.join(" and ")})`);
    }
  }
  // The snapshot dir itself: owned like pgdata, 0755 whatever the local dir's mode (often a 0700
  // temp dir), so the unprivileged reader can reach pgdata/ and snapshot.json.
  const pg = lstatSync(path.join(snapshotDir, "pgdata"));
  out.push({ abs: snapshotDir, name: prefix, st: pg, mode: 0o755 });
  for (const m of [...LAYER_MEMBERS].sort(byteOrder)) walk(path.join(snapshotDir, m), `${prefix}/${m}`);
  return out;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A pass-through that hashes and counts what flows by. */
function hashing(hash: Hash, count: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count(chunk.length);
      cb(null, chunk);
    },
  });
}

type TarHeader = Parameters<tar.Pack["entry"]>[0];
/** The part of tar-stream's (streamx) entry sink we use; its typings want arguments Node's don't. */
interface EntrySink {
  write(chunk: Buffer): boolean;
  end(): void;
  once(ev: "drain", f: () => void): void;
  destroy(e?: Error): void;
}

async function writeEntry(pack: tar.Pack, header: TarHeader, file: string | undefined, onBytes: (n: number) => void, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve())) as unknown as EntrySink;
    if (!file) return void sink.end();
    (async () => {
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
        signal?.throwIfAborted();
        onBytes((chunk as Buffer).length);
        if (!sink.write(chunk as Buffer)) await new Promise<void>((r) => sink.once("drain", r));
      }
      sink.end();
    })().catch((e) => {
      sink.destroy(e);
      reject(e);
    });
  });
}

/** Writes the data layer blob into `blobsDir` and returns its descriptor data. */
export async function writeSnapshotLayer(opts: LayerOptions): Promise<LayerBlob> {
  const entries = collect(opts.snapshotDir);
  const bytesTotal = entries.reduce((n, e) => n + (e.st.isFile() ? e.st.size : 0), 0);
  let bytesDone = 0;
  const report = progressThrottle("layer", bytesTotal, opts.onProgress);
  const prefix = IMAGE_SNAPSHOT_DIR.replace(/^\/+/, "").split("/");
  const pack = tar.pack();
  const common = { mtime: opts.mtime, uname: "", gname: "" };

  const feed = (async () => {
    // Parent dirs of the snapshot dir: root-owned, 0755, like any base image's /var/lib.
    for (let i = 1; i < prefix.length; i++) {
      await writeEntry(pack, { ...common, name: prefix.slice(0, i).join("/"), type: "directory", mode: 0o755, uid: 0, gid: 0 }, undefined, () => undefined);
    }
    for (const e of entries) {
      opts.signal?.throwIfAborted();
      const owner = opts.owner ?? { uid: e.st.uid, gid: e.st.gid };
      const base = { ...common, name: e.name, mode: e.mode ?? e.st.mode & 0o7777, ...owner };
      if (e.st.isDirectory()) await writeEntry(pack, { ...base, type: "directory" }, undefined, () => undefined);
      else if (e.st.isSymbolicLink()) await writeEntry(pack, { ...base, type: "symlink", linkname: readlinkSync(e.abs) }, undefined, () => undefined);
      else {
        await writeEntry(pack, { ...base, type: "file", size: e.st.size }, e.abs, (n) => {
          bytesDone += n;
          report(bytesDone);
        }, opts.signal);
      }
    }
    pack.finalize();
  })().catch((e) => {
    pack.destroy(e);
    throw e;
  });

  const tarHash = createHash("sha256");
  const blobHash = createHash("sha256");
  let tarSize = 0;
  let blobSize = 0;
  const tmp = path.join(opts.blobsDir, `.layer-${process.pid}-${Date.now()}.tmp`);
  const source = async function* () {
    for await (const chunk of pack) yield chunk as Buffer;
  };
  const countTar = hashing(tarHash, (n) => (tarSize += n));
  const sink = createWriteStream(tmp, { mode: 0o644 });
  try {
    await Promise.all([
      feed,
      opts.compress
        ? pipeline(source, countTar, createGzip({ level: opts.gzipLevel ?? 1 }), hashing(blobHash, (n) => (blobSize += n)), sink, { signal: opts.signal })
        : pipeline(source, countTar, sink, { signal: opts.signal }),
    ]);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  report(bytesDone, true);
  const diffId = `sha256:${tarHash.digest("hex")}`;
  const digest = opts.compress ? `sha256:${blobHash.digest("hex")}` : diffId;
  const file = path.join(opts.blobsDir, digest.slice("sha256:".length));
  renameSync(tmp, file);
  return { mediaType: opts.compress ? MT.layerGzip : MT.layer, digest, size: opts.compress ? blobSize : tarSize, diffId, file };
}
