import type pg from "pg";
import type { SnapshotManifest } from "../../common/snapshot";

/**
 * One result per snapshot id, computed on first use through a replica serving that snapshot (a
 * snapshot never changes, so neither does the result). A failed computation (replica gone) does not
 * stick: the next call tries again.
 */
export class PerSnapshot<T> {
  private readonly map = new Map<string, Promise<T>>();

  constructor(private readonly compute: (client: pg.ClientBase, snapshot: SnapshotManifest) => Promise<T>) {}

  get(client: pg.ClientBase, snapshot: SnapshotManifest): Promise<T> {
    let p = this.map.get(snapshot.id);
    if (!p) {
      p = this.compute(client, snapshot);
      this.map.set(snapshot.id, p);
      p.catch(() => this.map.get(snapshot.id) === p && this.map.delete(snapshot.id));
    }
    return p;
  }

  /** Forgets snapshots no longer served. */
  keepOnly(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.map.keys()) if (!keep.has(id)) this.map.delete(id);
  }
}
