import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { SnapshotManifest } from "../../common/snapshot";
import { bake } from "../../runtime/bake";
import { chownTree, pgRunAs } from "../../runtime/pg/run-as";
import { startTestMaster } from "./pg";

export interface TestSnapshot {
  /** The snapshot dir: `pgdata/` and `snapshot.json`. */
  dir: string;
  manifest: SnapshotManifest;
  /** The baked database (holds `items` and `item_seq`). */
  database: string;
  remove(): void;
}

/**
 * A real snapshot, made by the real bake from a throw-away master holding `items` (about 130 bytes a
 * row) and a sequence. `sql` runs on the master after the load; `parent` is where the snapshot goes.
 */
export async function makeTestSnapshot(opts: { rows?: number; parent?: string; sql?: string[] } = {}): Promise<TestSnapshot> {
  const master = await startTestMaster();
  const dir = mkdtempSync(path.join(opts.parent ?? os.tmpdir(), "cndb-snap-"));
  try {
    chownTree(dir, pgRunAs()); // the bake builds beside its output as PostgreSQL's account
    await master.server.query(`
      CREATE SEQUENCE item_seq;
      CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL, note text);
      INSERT INTO items SELECT g, 'item-' || g, g % 97, repeat(md5(g::text), 2) FROM generate_series(1, ${opts.rows ?? 1000}) g;
      ${(opts.sql ?? []).join(";\n")}`);
    const out = path.join(dir, "snapshot");
    const { manifest } = await bake({ source: master.url, out, jobs: 2 });
    return { dir: out, manifest, database: manifest.source.database, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    await master.stop();
  }
}
