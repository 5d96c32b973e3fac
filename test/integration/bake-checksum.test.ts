import assert from "node:assert/strict";
import pg from "pg";
import { CHECKSUM_SESSION, checksumAlgorithm, snapshotSums, spareSessions, tableSum, type Summable } from "../../runtime/bake/checksum";
import { startTestMaster, type TestMaster } from "../helpers/pg";

describe("bake: checksums on a real server", function () {
  this.timeout(60000);
  let m: TestMaster;
  const clients: pg.Client[] = [];
  const open = async () => {
    const c = new pg.Client(m.url);
    c.on("error", () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  const big: Summable = { schema: "public", name: "big", kind: "r", bytes: 1e7 };
  const small: Summable = { schema: "public", name: "small", kind: "r", bytes: 1e3 };

  before(async () => {
    m = await startTestMaster();
    await m.server.query(`
      CREATE TABLE big AS SELECT i, md5(i::text) AS s, now() - i * interval '1 s' AS t FROM generate_series(1, 50000) i;
      CREATE TABLE small (k text COLLATE "C", v numeric);
      INSERT INTO small VALUES ('a', 1.5), ('b', NULL), ('Ünï', -2);`);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await m?.stop();
  });

  it("checksums do not depend on row order, and change with any value", async () => {
    const c = await open();
    await c.query(CHECKSUM_SESSION);
    const before = await tableSum(c, small);
    assert.match(before.checksum, /^hte64:-?\d+$/);
    await c.query("CREATE TABLE public.small2 AS SELECT * FROM public.small ORDER BY k DESC");
    const shuffled = await tableSum(c, { ...small, name: "small2" });
    assert.deepEqual(shuffled, before, "same rows in another physical order");
    await c.query("UPDATE public.small2 SET v = 1.50 WHERE k = 'a'"); // equal as a number, different as text
    assert.notEqual((await tableSum(c, { ...small, name: "small2" })).checksum, before.checksum);
    const md5 = await tableSum(c, small, "md5sum64");
    assert.match(md5.checksum, /^md5sum64:-?\d+$/);
    assert.equal(md5.rows, 3);
  });

  it("names the algorithm it reads, and refuses an unknown one naming the known ones", () => {
    assert.equal(checksumAlgorithm("hte64:123"), "hte64");
    assert.equal(checksumAlgorithm("md5sum64:-5"), "md5sum64");
    assert.throws(() => checksumAlgorithm("sha9:1", "app.t: checksum"), /app\.t: checksum "sha9:1": unknown checksum algorithm "sha9"; known: hte64, md5sum64/);
    assert.throws(() => checksumAlgorithm("12345"), /no algorithm prefix/);
  });

  it("sums on several sessions in one exported snapshot, and ignores writes after it", async () => {
    const first = await open();
    await first.query(CHECKSUM_SESSION);
    const alone = await Promise.all([tableSum(first, big), tableSum(first, small)]);
    await first.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const snap = (await first.query<{ s: string }>("SELECT pg_export_snapshot() AS s")).rows[0].s;
    await (await open()).query("INSERT INTO big VALUES (0, 'after the snapshot', now())");
    const sums = await snapshotSums(first, open, snap, [big, small], 2);
    assert.deepEqual(sums.map((s) => [s.name, s.rows, s.checksum]), [["big", alone[0].rows, alone[0].checksum], ["small", 3, alone[1].checksum]]);
    await first.query("COMMIT");
  });

  it("a helper that meets a queued ACCESS EXCLUSIVE lock hands its table back to the session holding the locks", async () => {
    const first = await open();
    await first.query(CHECKSUM_SESSION);
    const want = await tableSum(first, small);
    await first.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; LOCK TABLE public.big, public.small IN ACCESS SHARE MODE");
    const snap = (await first.query<{ s: string }>("SELECT pg_export_snapshot() AS s")).rows[0].s;
    // queues behind the first session's ACCESS SHARE; any new reader of `small` queues behind it in turn
    const ddl = await open();
    const altering = ddl.query("ALTER TABLE small ADD COLUMN extra int").catch((e: Error) => e);
    const watch = await open();
    await waitFor(async () => (await watch.query("SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'")).rowCount === 1);
    const t0 = Date.now();
    const sums = await snapshotSums(first, open, snap, [big, small], 2);
    assert.ok(Date.now() - t0 >= 900, "the helper waited for its lock timeout");
    assert.equal(sums[1].checksum, want.checksum);
    await first.query("COMMIT");
    const altered = await altering;
    assert.ok(!(altered instanceof Error), `the queued ALTER ran once the snapshot ended: ${String(altered)}`);
  });

  it("takes no more sessions than the master can spare", async () => {
    const c = await open();
    const max = Number((await c.query<{ m: string }>("SHOW max_connections")).rows[0].m);
    assert.equal(await spareSessions(c, 3, 2), 3, `plenty free under max_connections ${max}`);
    await c.query("CREATE ROLE tight LOGIN PASSWORD 'x' CONNECTION LIMIT 4");
    const t = new pg.Client({ ...pgUrl(m.url), user: "tight", password: "x" });
    await t.connect();
    clients.push(t);
    // 4 allowed, 1 in use, pg_dump -j 2 takes 3: none left
    assert.equal(await spareSessions(t, 3, 2), 0);
    assert.equal(await spareSessions(t, 3, 1), 1);
  });
});

function pgUrl(url: string): pg.ClientConfig {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), database: u.pathname.slice(1) || "postgres" };
}

async function waitFor(check: () => Promise<boolean>, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}
