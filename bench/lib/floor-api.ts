/**
 * B5's floor arm: the smallest Fastify server that answers B5's two requests with the same SQL over a
 * pg.Pool of the same size, with none of the read API's work (catalog, query building, auth, ETags,
 * metrics, request log, failover). The gap between it and direct pg is what any Node HTTP layer costs
 * here; the gap between it and the API is what our code costs. argv: <port> <replicaUrl> <poolSize>
 */
import Fastify from "fastify";
import pg from "pg";

async function main(): Promise<void> {
  const [port, url, size] = process.argv.slice(2);
  const pool = new pg.Pool({ connectionString: url, max: Number(size) });
  const app = Fastify({ logger: false });
  const cols = "aid, bid, abalance, filler";
  app.get("/readyz", async () => (await pool.query("SELECT 1"), { status: "ready" }));
  app.get<{ Params: { aid: string } }>("/point/:aid", async (req, reply) => {
    const r = await pool.query({ name: "point", text: `SELECT ${cols} FROM pgbench_accounts WHERE aid = $1`, values: [req.params.aid] });
    if (!r.rows.length) return reply.code(404).send({ error: "no row" });
    return { row: r.rows[0] };
  });
  app.get<{ Querystring: { bid: string; limit: string } }>("/list", async (req) => {
    const limit = Number(req.query.limit);
    const r = await pool.query({ name: "list", text: `SELECT ${cols} FROM pgbench_accounts WHERE bid = $1 ORDER BY aid LIMIT $2`, values: [req.query.bid, limit + 1] });
    return { rows: r.rows.slice(0, limit), cursor: r.rows.length > limit ? String(r.rows[limit - 1].aid) : null };
  });
  await app.listen({ port: Number(port), host: "127.0.0.1" });
  const stop = () => void app.close().then(() => pool.end()).finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((e: Error) => {
  console.error(`floor-api: ${e.message}`);
  process.exit(1);
});
