import { randomBytes } from "node:crypto";
import { z } from "zod";

/**
 * The snapshot manifest (`<dir>/snapshot.json`), written by the bake and read by the replica, the read
 * API, local mode and the image labels. Shared by deploy-time and run-time code.
 */
export const SNAPSHOT_FORMAT = 1;

export const TableEntry = z.object({
  schema: z.string(),
  name: z.string(),
  /** "table" | "partitioned" | "matview"; partitions are listed as tables of their own. */
  kind: z.enum(["table", "partitioned", "matview"]).default("table"),
  rows: z.number().int().nonnegative(),
  /** Order-independent content checksum computed in SQL on the master and recomputed on the replica. */
  checksum: z.string(),
  bytes: z.number().int().nonnegative(),
});
export type TableEntry = z.infer<typeof TableEntry>;

export const SnapshotManifest = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  id: z.string().regex(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/),
  createdAt: z.string(),
  source: z.object({
    host: z.string(),
    database: z.string(),
    serverVersion: z.string(),
    /** pg_current_wal_lsn() at the exported snapshot. */
    lsn: z.string(),
    /** now() inside the snapshot transaction on the master. */
    time: z.string(),
  }),
  postgresMajor: z.number().int(),
  schemas: z.array(z.string()),
  tables: z.array(TableEntry),
  pgdataBytes: z.number().int().nonnegative(),
  /** Present when the bake wrote an OCI image. */
  image: z
    .object({
      manifestDigest: z.string(),
      layerDigest: z.string(),
      ref: z.string().optional(),
    })
    .optional(),
});
export type SnapshotManifest = z.infer<typeof SnapshotManifest>;

/** Sortable and unique: UTC time to the second, then 24 random bits. Valid as an OCI tag and a k8s label. */
export function newSnapshotId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${t}-${randomBytes(3).toString("hex")}`;
}

export function parseManifest(json: unknown, where = "snapshot.json"): SnapshotManifest {
  const r = SnapshotManifest.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${where}: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  return r.data;
}

/** Image label keys carrying the snapshot identity (also read by the fleet). */
export const LABELS = {
  snapshotId: "io.container-native-db.snapshot.id",
  sourceLsn: "io.container-native-db.source.lsn",
  sourceTime: "io.container-native-db.source.time",
  postgresMajor: "io.container-native-db.postgres.major",
} as const;
