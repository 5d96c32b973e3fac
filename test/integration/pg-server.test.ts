import assert from "node:assert/strict";
import pg from "pg";
import { startTestMaster, type TestMaster } from "../helpers/pg";

describe("runtime/pg: a real server we own", () => {
  let m: TestMaster;
  before(async () => {
    m = await startTestMaster();
  });
  after(async () => m?.stop());

  it("accepts password connections over TCP and trusted ones over the socket", async () => {
    const c = new pg.Client({ connectionString: m.url });
    await c.connect();
    const r = await c.query("SELECT current_user, inet_server_addr()::text AS addr");
    await c.end();
    assert.equal(r.rows[0].current_user, "postgres");
    assert.equal(r.rows[0].addr, "127.0.0.1/32");
    const s = await m.server.query("SHOW fsync");
    assert.equal(s.rows[0].fsync, "off");
  });

  it("refuses a wrong password", async () => {
    const c = new pg.Client({ connectionString: m.url.replace(m.password, "wrong") });
    await assert.rejects(c.connect(), /password authentication failed/);
  });
});
