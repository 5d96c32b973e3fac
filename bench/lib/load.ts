import http from "node:http";
import { percentile } from "./stats";

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  firstError?: string;
}

/**
 * A bounded closed-loop load generator: `concurrency` workers each issue one request, wait for it,
 * issue the next, until `seconds` have passed or `maxRequests` were sent. Latency per request in ms.
 */
export async function closedLoop(
  opts: { concurrency: number; seconds: number; maxRequests?: number },
  request: (i: number) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let issued = 0;
  let errors = 0;
  let firstError: string | undefined;
  const max = opts.maxRequests ?? 2_000_000;
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline && issued < max) {
      const i = issued++;
      const s = performance.now();
      try {
        await request(i);
        latencies.push(performance.now() - s);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
        if (errors > 100) throw new Error(`load: more than 100 errors, the first: ${firstError}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return {
    requests: latencies.length,
    errors,
    seconds,
    rps: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    firstError,
  };
}

/** GET over a keep-alive agent; rejects on a non-2xx status; reads (and parses) the whole body. */
export function httpGetJson(agent: http.Agent, base: URL, pathAndQuery: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ agent, host: base.hostname, port: base.port, path: pathAndQuery, headers: { accept: "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if ((res.statusCode ?? 0) >= 300) reject(new Error(`GET ${pathAndQuery}: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
        else {
          try {
            resolve(JSON.parse(body));
          } catch (e) {
            reject(e);
          }
        }
      });
      res.on("error", reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${pathAndQuery}: timed out`)));
    req.on("error", reject);
  });
}
