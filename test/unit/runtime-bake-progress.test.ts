import assert from "node:assert/strict";
import { summaryLine } from "../../runtime/bake/command";
import { abortError, asBakeError, BakeError } from "../../runtime/bake/errors";
import { formatBytes, formatProgress, ProgressReporter, type BakeProgress } from "../../runtime/bake/progress";
import { sequenceWithin } from "../../runtime/bake/verify";

describe("runtime/bake: progress, errors, summary", () => {
  it("formats a progress line with elapsed time, tables and bytes", () => {
    const e: BakeProgress = { phase: "restore", kind: "progress", elapsedMs: 4210, phaseElapsedMs: 1000, tablesDone: 3, tablesTotal: 10, bytesDone: 1_200_000, bytesTotal: 4_000_000 };
    assert.equal(formatProgress(e), "[   4.2s] restore: 3/10 tables, 1.2 MB of 4.0 MB");
    assert.equal(formatProgress({ ...e, kind: "end", phaseElapsedMs: 2500, tablesDone: undefined, tablesTotal: undefined, bytesDone: undefined, bytesTotal: undefined }), "[   4.2s] restore done in 2.5s");
    assert.equal(formatBytes(999), "999 B");
    assert.equal(formatBytes(1_500_000_000), "1.5 GB");
  });

  it("the reporter brackets phases and throttles repeated progress, never the forced one", () => {
    const seen: BakeProgress[] = [];
    const r = new ProgressReporter((e) => seen.push(e), 60_000);
    r.start("dump", { tablesTotal: 2 });
    r.progress({ tablesDone: 1 });
    r.progress({ tablesDone: 1 });
    r.progress({ tablesDone: 2 }, true);
    r.note("left out a view");
    r.end();
    assert.deepEqual(seen.map((e) => `${e.phase}:${e.kind}:${e.tablesDone ?? ""}`), ["dump:start:", "dump:progress:1", "dump:progress:2", "dump:note:", "dump:end:"]);
    const failing = new ProgressReporter(() => {
      throw new Error("sink broke");
    });
    failing.start("verify"); // a broken sink does not break the bake
  });

  it("recognises a full disk whatever step hit it, and an abort", () => {
    const e = asBakeError(new Error('pg_restore: error: could not write to file "x": No space left on device'), "restore", "restoring");
    assert.equal(e.code, "no-space");
    assert.match(e.message, /^no space left on device while restoring: free some space or choose --out on a larger filesystem/);
    assert.equal(asBakeError(Object.assign(new Error("write failed"), { code: "ENOSPC" }), "dump", "dumping").code, "no-space");
    const other = asBakeError(new Error("boom"), "verify", "verifying");
    assert.deepEqual([other.code, other.message], ["verify", "verifying failed: boom"]);
    const ac = new AbortController();
    ac.abort("SIGTERM");
    assert.equal(asBakeError(new Error("killed"), "dump", "dumping", ac.signal).code, "aborted");
    assert.equal(abortError(ac.signal).message, "bake interrupted (SIGTERM); nothing was left behind");
    const known = new BakeError("option", "x");
    assert.equal(asBakeError(known, "dump", "y"), known);
  });

  it("sequences: exact when unused during the dump, within the range when busy", () => {
    assert.ok(sequenceWithin("5/true", "5/true", "5/true"));
    assert.ok(!sequenceWithin("6/true", "5/true", "5/true"));
    assert.ok(sequenceWithin("7/true", "5/true", "9/true"));
    assert.ok(!sequenceWithin("10/true", "5/true", "9/true"));
    assert.ok(sequenceWithin("1/false", "1/false", "3/true"), "(1, not called) is before (1, called)");
    assert.ok(sequenceWithin("-3/true", "-1/true", "-5/true"), "descending sequences");
  });

  it("the summary line gives id, tables, rows (partitioned parents not double counted), bytes and time", () => {
    const line = summaryLine({
      dir: "/srv/snap",
      elapsedMs: 12_345,
      manifest: {
        format: 1, id: "20250101T000000Z-abcdef", createdAt: "", schemas: ["app"], postgresMajor: 15, pgdataBytes: 52_000_000,
        source: { host: "h", database: "d", serverVersion: "15", lsn: "0/1", time: "" },
        tables: [
          { schema: "app", name: "p", kind: "partitioned", rows: 10, checksum: "", bytes: 0 },
          { schema: "app", name: "p1", kind: "table", rows: 10, checksum: "", bytes: 0 },
          { schema: "app", name: "m", kind: "matview", rows: 2, checksum: "", bytes: 0 },
        ],
      },
    });
    assert.equal(line, "baked snapshot 20250101T000000Z-abcdef: 3 tables, 12 rows, 52.0 MB PGDATA in 12.3s -> /srv/snap");
  });
});
