import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { READER_ROLE } from "../../common/contract";
import type { Settings } from "../pg/server";

/** The restore server: a private, throw-away load target (socket only, no durability, minimal WAL). */
export const RESTORE_SETTINGS: Settings = {
  fsync: false,
  full_page_writes: false,
  synchronous_commit: false,
  autovacuum: false,
  wal_level: "minimal",
  max_wal_senders: 0,
  archive_mode: false,
  max_wal_size: "16GB",
  checkpoint_timeout: "1h",
  maintenance_work_mem: "256MB",
  log_min_messages: "warning",
  log_statement: "none",
};

/**
 * The last start/stop before baking: wal_level=replica (else the standby refuses to start) and the
 * smallest values of the settings a hot standby must match or exceed, so the reader may pick any.
 */
export const FINAL_STOP_SETTINGS: Settings = {
  ...RESTORE_SETTINGS,
  wal_level: "replica",
  max_connections: 5,
  superuser_reserved_connections: 1,
  max_worker_processes: 0,
  max_prepared_transactions: 0,
  max_locks_per_transaction: 10,
  max_wal_senders: 0,
};

/** Appended to the baked postgresql.conf: a permanent hot standby with nothing to make durable. */
export function replicaConf(): string {
  return [
    "",
    "# --- cndb bake: a read-only replica of a baked snapshot ---",
    "# standby.signal and no upstream: recovery never ends, so every write is refused.",
    "hot_standby = on",
    "wal_level = replica",
    "fsync = off",
    "full_page_writes = off",
    "synchronous_commit = off",
    "autovacuum = off",
    "default_transaction_read_only = on",
    "max_wal_senders = 0",
    "",
  ].join("\n");
}

/**
 * pg_hba.conf: the superuser over the local socket only; the reader role over the socket, and over TCP
 * with a SCRAM password when the bake set one, else from loopback only. No other role over TCP.
 */
export function pgHba(readerHasPassword: boolean): string {
  const r = READER_ROLE;
  const lines = [
    "# cndb baked snapshot: written by the bake, read-only replica access rules",
    "# TYPE  DATABASE  USER      ADDRESS        METHOD",
    "local   all       postgres                 trust",
    `local   all       ${r}                   trust`,
  ];
  if (readerHasPassword) {
    lines.push(`host    all       ${r}      0.0.0.0/0      scram-sha-256`, `host    all       ${r}      ::/0           scram-sha-256`);
  } else {
    lines.push(`host    all       ${r}      127.0.0.1/32   trust`, `host    all       ${r}      ::1/128        trust`);
  }
  return lines.join("\n") + "\n";
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677, PostgreSQL's stored format), computed here so the plain
 * password never reaches the server or its logs. NFKC stands in for SASLprep (same for usual passwords).
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(Buffer.from(password.normalize("NFKC"), "utf8"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
