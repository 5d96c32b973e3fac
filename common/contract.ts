/**
 * What the deploy (components/) and the run-time (runtime/) agree on: where the snapshot sits inside
 * the image, which ports the containers use, and the names of the `cndb` subcommands they run.
 */

/** Directory holding `snapshot.json` and `pgdata/` inside a snapshot image. */
export const IMAGE_SNAPSHOT_DIR = "/var/lib/cndb/snapshot";
export const IMAGE_PGDATA = `${IMAGE_SNAPSHOT_DIR}/pgdata`;

/** The reader container's PostgreSQL port (read-only) and the read API sidecar's HTTP port. */
export const READER_PORT = 5432;
export const API_PORT = 8080;

/** Unix socket directory shared by the reader and the API sidecar (an emptyDir in the pod). */
export const SOCKET_DIR = "/var/run/cndb";

/** Created by `cndb replica --ready-file` once warm-up is done; the reader's readiness probe checks it. */
export const READY_FILE = "/var/run/cndb/ready";

/** The baked database's SELECT-only role. */
export const READER_ROLE = "reader";

/** The unprivileged uid/gid the reader and tools images run as (the postgres account of the base image). */
export const RUNTIME_UID = 999;
export const RUNTIME_GID = 999;
