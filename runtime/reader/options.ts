import net from "node:net";

export const WARMUP_MODES = ["full", "files", "none"] as const;
export type WarmupMode = (typeof WARMUP_MODES)[number];

/**
 * `files` by default: it is what keeps overlayfs copy-up off every client's first query, and it
 * costs little on top; startup stays independent of the data size where copy-up clones (README.md here).
 */
export const DEFAULT_WARMUP: WarmupMode = "files";

export const WORKING_COPY_MODES = ["auto", "overlay", "fuse-overlayfs", "copy"] as const;
export type WorkingCopyMode = (typeof WORKING_COPY_MODES)[number];

export interface ReplicaOptions {
  /** Snapshot dir: `<snapshot>/pgdata` and `<snapshot>/snapshot.json` (the bake's output). */
  snapshot: string;
  /** TCP port PostgreSQL listens on (also names its Unix socket). */
  port: number;
  /** PostgreSQL listen_addresses; "" for the Unix socket only. @default "127.0.0.1" */
  listen?: string;
  /** Where the replica's working copy goes (a fresh subdirectory is made inside, removed on stop). @default os.tmpdir() */
  workDir?: string;
  /** @default DEFAULT_WARMUP */
  warmup?: WarmupMode;
  /** Run directly on `<snapshot>/pgdata` (a container, whose rootfs is already a copy-on-write layer). @default false */
  inPlace?: boolean;
  /** How to make the working copy; "auto" picks overlay, else fuse-overlayfs, else a copy. @default "auto" */
  workingCopy?: WorkingCopyMode;
  /** Directory for PostgreSQL's Unix socket (shared with the read API). @default a fresh temp dir */
  socketDir?: string;
  /** File created once the replica is ready (a readiness probe checks it); removed on stop. */
  readyFile?: string;
  /** Aborting cancels a start in progress (cleaning up) or stops a running replica. */
  signal?: AbortSignal;
  /** Progress lines (never secrets). */
  log?: (line: string) => void;
}

/** A bad option: `field` is the ReplicaOptions key, so callers (the CLI) can name their own flag. */
export class ReplicaOptionError extends Error {
  constructor(
    readonly field: keyof ReplicaOptions,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = "ReplicaOptionError";
  }
}

export type ResolvedOptions = Required<Omit<ReplicaOptions, "workDir" | "socketDir" | "readyFile" | "signal">> &
  Pick<ReplicaOptions, "workDir" | "socketDir" | "readyFile" | "signal">;

/** Checks the options' shapes (not the file system) and fills in defaults. */
export function resolveOptions(o: ReplicaOptions): ResolvedOptions {
  if (typeof o.snapshot !== "string" || o.snapshot === "") throw new ReplicaOptionError("snapshot", "a snapshot directory is required");
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
    throw new ReplicaOptionError("port", `must be an integer from 1 to 65535 (got ${JSON.stringify(o.port)})`);
  }
  const listen = o.listen ?? "127.0.0.1";
  for (const a of listenAddresses(listen)) {
    if (a !== "*" && !/^[A-Za-z0-9.:-]+$/.test(a)) {
      throw new ReplicaOptionError("listen", `"${a}" is not an IP address, host name or "*" (a comma-separated list is allowed, "" for the Unix socket only)`);
    }
  }
  const warmup = o.warmup ?? DEFAULT_WARMUP;
  if (!WARMUP_MODES.includes(warmup)) {
    throw new ReplicaOptionError("warmup", `must be one of ${WARMUP_MODES.join(", ")} (got ${JSON.stringify(warmup)})`);
  }
  const workingCopy = o.workingCopy ?? "auto";
  if (!WORKING_COPY_MODES.includes(workingCopy)) {
    throw new ReplicaOptionError("workingCopy", `must be one of ${WORKING_COPY_MODES.join(", ")} (got ${JSON.stringify(workingCopy)})`);
  }
  const inPlace = o.inPlace ?? false;
  if (inPlace && o.workDir !== undefined) throw new ReplicaOptionError("workDir", "cannot be combined with inPlace (the replica runs on the snapshot itself)");
  if (inPlace && o.workingCopy !== undefined && o.workingCopy !== "auto") {
    throw new ReplicaOptionError("workingCopy", "cannot be combined with inPlace");
  }
  for (const f of ["workDir", "socketDir", "readyFile"] as const) {
    if (o[f] !== undefined && (typeof o[f] !== "string" || o[f] === "")) throw new ReplicaOptionError(f, "must be a non-empty path");
  }
  return {
    snapshot: o.snapshot,
    port: o.port,
    listen,
    warmup,
    inPlace,
    workingCopy,
    workDir: o.workDir,
    socketDir: o.socketDir,
    readyFile: o.readyFile,
    signal: o.signal,
    log: o.log ?? (() => undefined),
  };
}

/** PostgreSQL's listen_addresses list ("" = none). */
export function listenAddresses(listen: string): string[] {
  return listen
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
}

/** Fails early, naming --port, when something already listens there (PostgreSQL would only say so in its log). */
export async function checkPortFree(listen: string, port: number): Promise<void> {
  const addrs = listenAddresses(listen).map((a) => (a === "*" ? "0.0.0.0" : a === "localhost" ? "127.0.0.1" : a));
  for (const host of addrs) {
    await new Promise<void>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", (e: NodeJS.ErrnoException) => {
        if (e.code === "EADDRINUSE") reject(new ReplicaOptionError("port", `${host}:${port} is already in use`));
        else if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND") reject(new ReplicaOptionError("listen", `cannot listen on ${host}: ${e.code}`));
        else reject(e);
      });
      s.listen({ port, host, exclusive: true }, () => s.close(() => resolve()));
    });
  }
}
