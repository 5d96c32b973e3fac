import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { createDatabaseSql, type DatabaseInfo } from "../../runtime/bake/database";
import { dumpArgs } from "../../runtime/bake/dump";
import { pgHba, replicaConf, FINAL_STOP_SETTINGS, RESTORE_SETTINGS, scramVerifier } from "../../runtime/bake/replica-config";
import { mergeSecret, parseDbSecret, secretRegion } from "../../runtime/bake/secret";
import type { Selection } from "../../runtime/bake/select";
import { checkDumpVersion, parseSource } from "../../runtime/bake/source";

describe("runtime/bake: replica configuration", () => {
  const rules = (hba: string) => hba.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(/\s+/));

  it("pg_hba without a reader password: superuser and reader on the socket, reader on loopback only", () => {
    const r = rules(pgHba(false));
    assert.deepEqual(r, [
      ["local", "all", "postgres", "trust"],
      ["local", "all", "reader", "trust"],
      ["host", "all", "reader", "127.0.0.1/32", "trust"],
      ["host", "all", "reader", "::1/128", "trust"],
    ]);
  });

  it("pg_hba with a reader password: reader from anywhere with SCRAM; no other role over TCP either way", () => {
    const r = rules(pgHba(true));
    const tcp = r.filter((x) => x[0] === "host");
    assert.deepEqual(tcp, [["host", "all", "reader", "0.0.0.0/0", "scram-sha-256"], ["host", "all", "reader", "::/0", "scram-sha-256"]]);
    for (const hba of [pgHba(true), pgHba(false)]) assert.ok(rules(hba).filter((x) => x[0] !== "local").every((x) => x[2] === "reader"));
  });

  it("the replica runs as a hot standby with nothing durable; the last stop uses wal_level=replica and minimal limits", () => {
    const conf = replicaConf();
    for (const line of ["hot_standby = on", "wal_level = replica", "fsync = off", "full_page_writes = off", "synchronous_commit = off", "autovacuum = off"]) {
      assert.ok(conf.includes(`\n${line}\n`), line);
    }
    assert.equal(RESTORE_SETTINGS.wal_level, "minimal");
    assert.equal(RESTORE_SETTINGS.fsync, false);
    assert.equal(RESTORE_SETTINGS.autovacuum, false);
    assert.equal(FINAL_STOP_SETTINGS.wal_level, "replica");
    assert.ok(Number(FINAL_STOP_SETTINGS.max_connections) <= 10, "a standby needs at least the primary's max_connections");
  });

  it("the SCRAM verifier is PostgreSQL's format and follows RFC 5802", () => {
    const salt = Buffer.from("0123456789abcdef");
    const v = scramVerifier("pencil", salt, 4096);
    assert.match(v, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    const salted = pbkdf2Sync("pencil", salt, 4096, 32, "sha256");
    const stored = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest("base64");
    assert.equal(v.split("$")[2].split(":")[0], stored);
    assert.equal(v.split("$")[1].split(":")[1], salt.toString("base64"));
    assert.notEqual(scramVerifier("pencil"), scramVerifier("pencil"), "a fresh salt each time");
    assert.ok(!v.includes("pencil"));
  });
});

describe("runtime/bake: source, dump and database", () => {
  it("parseSource keeps the password out of the URL and the display string", () => {
    const s = parseSource("postgres://app%40x:p%3Ass@db.example.com:6543/shop%20db?sslmode=require");
    assert.equal(s.password, "p:ss");
    assert.equal(s.user, "app@x");
    assert.equal(s.database, "shop db");
    assert.equal(s.host, "db.example.com");
    assert.equal(s.port, 6543);
    assert.ok(!s.url.includes("p%3Ass") && !s.url.includes("p:ss"));
    assert.match(s.url, /sslmode=require/);
    assert.equal(s.display, "postgres://app@x@db.example.com:6543/shop db");
    assert.throws(() => parseSource("not a url"), /--source: not a URL/);
    assert.throws(() => parseSource("mysql://a@b/c"), /--source: scheme mysql is not supported/);
  });

  it("checkDumpVersion: pg_dump at least the server's major, server 12+", () => {
    checkDumpVersion(15, "15.4", 150008, "15.8");
    checkDumpVersion(16, "16.1", 150008, "15.8");
    assert.throws(() => checkDumpVersion(15, "15.4", 160002, "16.2"), /pg_dump 15\.4 is older than the master \(PostgreSQL 16\.2\): install PostgreSQL 16 or newer \(Debian\/Ubuntu: apt-get install postgresql-16\)/);
    assert.throws(() => checkDumpVersion(15, "15.4", 110020, "11.20"), /supports PostgreSQL 12 or newer/);
  });

  it("dumpArgs: the exported snapshot, directory format, the subset as exact names, never the password", () => {
    const sel = {
      schemas: ["app"], excludedSchemas: ["Other schema"], notes: [], kept: [],
      excluded: [{ oid: 1, schema: "app", name: 'we"ird', kind: "r", unlogged: false, bytes: 0, unpopulated: false }],
    } as Selection;
    const args = dumpArgs({ source: parseSource("postgres://u:secret@h/db"), snapshot: "00000003-00000002-1", dumpDir: "/d", jobs: 3, selection: sel });
    assert.ok(args.includes("--snapshot=00000003-00000002-1"));
    assert.deepEqual(args.slice(args.indexOf("-j"), args.indexOf("-j") + 2), ["-j", "3"]);
    assert.ok(args.includes("-Fd"));
    assert.ok(args.includes('--exclude-schema="Other schema"'));
    assert.ok(args.includes('--exclude-table="app"."we""ird"'));
    assert.ok(!args.join(" ").includes("secret"));
  });

  it("createDatabaseSql carries the master's encoding and locale", () => {
    const d: DatabaseInfo = { name: "shop ✓", encoding: "UTF8", collate: "en_US.UTF-8", ctype: "en_US.UTF-8", provider: "c", settings: [] };
    assert.equal(createDatabaseSql(d, 15), `CREATE DATABASE "shop ✓" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8' LOCALE_PROVIDER libc`);
    assert.match(createDatabaseSql({ ...d, provider: "i", locale: "und-x-icu" }, 15), /LOCALE_PROVIDER icu ICU_LOCALE 'und-x-icu'$/);
    assert.match(createDatabaseSql({ ...d, collate: "it's" }, 15), /LC_COLLATE 'it''s'/);
  });
});

describe("runtime/bake/secret: --source-secret-arn", () => {
  const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-XyZ";

  it("takes the region from the ARN and rejects what is not a secret ARN", () => {
    assert.equal(secretRegion(arn), "eu-west-1");
    assert.throws(() => secretRegion("arn:aws:s3:::bucket"), /--source-secret-arn: "arn:aws:s3:::bucket" is not a Secrets Manager secret ARN/);
  });

  it("parses {username, password}, naming a missing field but never a value", () => {
    assert.deepEqual(parseDbSecret('{"username":"admin","password":"s3cr3t"}', arn), { username: "admin", password: "s3cr3t", host: undefined, port: undefined, dbname: undefined });
    assert.throws(() => parseDbSecret('{"username":"admin"}', arn), /the secret has no "password" string/);
    assert.throws(() => parseDbSecret("not json s3cr3t", arn), (e: Error) => /not a JSON object/.test(e.message) && !e.message.includes("s3cr3t"));
    assert.throws(() => parseDbSecret('{"username":"a","password":"b","port":"x"}', arn), /"port" is not a TCP port/);
  });

  it("merges: the secret's credentials win; host, port and database come from --source, else the secret", () => {
    const secret = { username: "admin", password: "p@ss:w/rd", host: "db.internal", port: 5433, dbname: "app" };
    const merged = parseSource(mergeSecret("postgres://ignored:old@master.example.com/shop", secret));
    assert.deepEqual([merged.user, merged.password, merged.host, merged.port, merged.database], ["admin", "p@ss:w/rd", "master.example.com", 5433, "shop"]);
    const fromSecret = parseSource(mergeSecret(undefined, secret));
    assert.deepEqual([fromSecret.host, fromSecret.port, fromSecret.database], ["db.internal", 5433, "app"]);
    assert.throws(() => mergeSecret(undefined, { username: "a", password: "b" }), /--source is required: the secret names no host/);
  });
});
