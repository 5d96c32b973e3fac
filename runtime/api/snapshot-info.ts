import { createHash } from "node:crypto";
import type { SnapshotManifest } from "../../common/snapshot";

/** Age of the data: seconds since the snapshot was taken on the master (its source time). */
export function snapshotAgeSeconds(s: SnapshotManifest, now = Date.now()): number {
  const t = Date.parse(s.source.time) || Date.parse(s.createdAt);
  return Number.isFinite(t) ? Math.max(0, Math.round((now - t) / 1000)) : 0;
}

/**
 * A strong ETag from the snapshot id and the request (method + URL): data never changes within a
 * snapshot, so the same request on the same snapshot always gets the same bytes. HEAD shares GET's.
 */
export function etagFor(snapshotId: string, method: string, url: string): string {
  const m = method === "HEAD" ? "GET" : method;
  return `"${createHash("sha256").update(`${snapshotId}\n${m}\n${url}`).digest("base64url").slice(0, 32)}"`;
}

/** RFC 9110 If-None-Match with weak comparison (GET/HEAD): `*`, or any listed tag equal to ours. */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  const ours = etag.replace(/^W\//, "");
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === ours);
}
