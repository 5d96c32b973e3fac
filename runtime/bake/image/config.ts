/**
 * The image config of a snapshot image: the base image's config (entrypoint, cmd, user, env kept)
 * plus our env, labels, data layer diff_id and history entry.
 */
import { IMAGE_PGDATA, IMAGE_SNAPSHOT_DIR } from "../../../common/contract";
import { LABELS, type SnapshotManifest } from "../../../common/snapshot";
import { hostArchitecture, type ImageConfig } from "./oci";

export function snapshotLabels(m: SnapshotManifest): Record<string, string> {
  return {
    [LABELS.snapshotId]: m.id,
    [LABELS.sourceLsn]: m.source.lsn,
    [LABELS.sourceTime]: m.source.time,
    [LABELS.postgresMajor]: String(m.postgresMajor),
    "org.opencontainers.image.created": m.createdAt,
  };
}

export const SNAPSHOT_ENV = { PGDATA: IMAGE_PGDATA, CNDB_SNAPSHOT: IMAGE_SNAPSHOT_DIR } as const;

/** Env lists merge by name: ours win (a postgres base image sets its own PGDATA). Order: base's, then new names. */
export function mergeEnv(base: readonly string[] | undefined, ours: Record<string, string>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const kv of base ?? []) {
    const k = kv.split("=", 1)[0];
    seen.add(k);
    out.push(k in ours ? `${k}=${ours[k]}` : kv);
  }
  for (const [k, v] of Object.entries(ours)) if (!seen.has(k)) out.push(`${k}=${v}`);
  return out;
}

export function buildImageConfig(opts: { manifest: SnapshotManifest; diffId: string; base?: ImageConfig; created: string }): ImageConfig {
  const { manifest: m, base } = opts;
  const baseCfg = base?.config ?? {};
  const config: NonNullable<ImageConfig["config"]> = {
    ...baseCfg,
    Env: mergeEnv(baseCfg.Env, SNAPSHOT_ENV),
    Labels: { ...(baseCfg.Labels ?? {}), ...snapshotLabels(m) },
  };
  const out: ImageConfig = {
    created: opts.created,
    architecture: base?.architecture ?? hostArchitecture(),
    os: base?.os ?? "linux",
    ...(base?.variant ? { variant: base.variant } : {}),
    config,
    rootfs: { type: "layers", diff_ids: [...(base?.rootfs.diff_ids ?? []), opts.diffId] },
    history: [
      ...(base?.history ?? []),
      {
        created: opts.created,
        created_by: `cndb bake: snapshot ${m.id} of ${m.source.database} at LSN ${m.source.lsn}`,
        comment: `PGDATA (PostgreSQL ${m.postgresMajor}) at ${IMAGE_PGDATA}`,
      },
    ],
  };
  return out;
}
