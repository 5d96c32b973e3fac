import assert from "node:assert/strict";
import { demoCounts, demoStatements } from "../../runtime/local/demo-data";
import { parseDuration } from "../../runtime/local/duration";
import { redactUrl } from "../../runtime/local/state";

describe("local mode: pure helpers", () => {
  it("parses durations and names the option on bad input", () => {
    assert.equal(parseDuration("90s"), 90_000);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("250ms"), 250);
    for (const bad of ["", "5", "5x", "m", "-5m", "5m garbage", "0s"]) {
      assert.throws(() => parseDuration(bad), /--refresh-every must be a duration like 30s/, bad);
    }
  });

  it("redacts passwords from URLs", () => {
    assert.equal(redactUrl("postgres://u:s3cret@127.0.0.1:5432/db"), "postgres://u@127.0.0.1:5432/db");
    assert.doesNotMatch(redactUrl("postgres://u:s3cret@h/db"), /s3cret/);
  });

  it("sizes the demo dataset at about 1M rows and rejects a bad scale", () => {
    const c = demoCounts();
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    assert.ok(total > 900_000 && total < 1_100_000, `total ${total}`);
    assert.equal(demoCounts(0.01).trials, 4000);
    assert.throws(() => demoCounts(0), /demo scale must be a positive number/);
    // No random(): the data must be the same on every machine and every run.
    assert.ok(demoStatements(c).every((s) => !/\brandom\(/.test(s.sql)));
  });
});
