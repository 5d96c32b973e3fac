import { open, readdir } from "node:fs/promises";
import path from "node:path";
import type { WarmupMode } from "./options";

/**
 * Directories whose files PostgreSQL opens read-write even to read them: relations (base/, global/) and
 * the small commit-status SLRUs. On overlayfs, opening read-write copies the whole file up; doing it here
 * means no client query pays that cost.
 */
export const WARMUP_DIRS = ["base", "global", "pg_xact", "pg_multixact"];

export interface WarmupResult {
  files: number;
  bytes: number;
  ms: number;
}

/**
 * `files`: open every such file read-write and close it (copy-up, content unchanged). `full`: also read
 * it through, so its pages sit in the OS page cache (a standby cannot CREATE EXTENSION pg_prewarm, and
 * this runs before PostgreSQL takes any client). `none`: nothing.
 */
export async function warmUp(dataDir: string, mode: WarmupMode, signal?: AbortSignal, concurrency = 8): Promise<WarmupResult> {
  const t0 = performance.now();
  if (mode === "none") return { files: 0, bytes: 0, ms: 0 };
  const files: string[] = [];
  for (const d of WARMUP_DIRS) await listFiles(path.join(dataDir, d), files);
  let bytes = 0;
  let next = 0;
  const worker = async () => {
    const buf = mode === "full" ? Buffer.allocUnsafe(1 << 20) : undefined;
    while (next < files.length) {
      signal?.throwIfAborted();
      const fh = await open(files[next++], "r+");
      try {
        if (buf) {
          for (let n; (n = (await fh.read(buf, 0, buf.length, null)).bytesRead) > 0; ) bytes += n;
        } else {
          const { size } = await fh.stat(); // not `bytes += await`: workers would lose each other's updates
          bytes += size;
        }
      } finally {
        await fh.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return { files: files.length, bytes, ms: Math.round(performance.now() - t0) };
}

async function listFiles(dir: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await listFiles(p, out);
    else if (e.isFile()) out.push(p);
  }
}
