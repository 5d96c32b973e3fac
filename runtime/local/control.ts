import { existsSync, rmSync } from "node:fs";
import http from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import { z } from "zod";

/**
 * `local up` listens on a Unix socket in the state dir (file permissions keep it to us) so that
 * `local refresh|rollback|scale|status` in another terminal can steer the running deployment.
 */
export interface ControlHandlers {
  status(): Promise<unknown>;
  refresh(): Promise<unknown>;
  rollback(): Promise<unknown>;
  scale(replicas: number): Promise<unknown>;
}

export const MAX_LOCAL_REPLICAS = 16;
export const ScaleBody = z.object({ replicas: z.number().int().min(1).max(MAX_LOCAL_REPLICAS) });

export async function startControlServer(socketPath: string, h: ControlHandlers): Promise<FastifyInstance> {
  if (existsSync(socketPath)) rmSync(socketPath); // a stale socket from a killed run: the pid file already said no one is running
  const app = Fastify({ logger: false });
  const fail = (e: unknown) => ({ error: { message: (e as Error).message } });
  const wrap = (fn: () => Promise<unknown>) => async (_req: unknown, reply: import("fastify").FastifyReply) => {
    try {
      return await fn();
    } catch (e) {
      return reply.code(500).send(fail(e));
    }
  };
  app.get("/status", wrap(() => h.status()));
  app.post("/refresh", wrap(() => h.refresh()));
  app.post("/rollback", wrap(() => h.rollback()));
  app.post("/scale", async (req, reply) => {
    const body = ScaleBody.safeParse(req.body);
    if (!body.success) {
      return reply.code(400).send({ error: { message: `replicas must be a whole number from 1 to ${MAX_LOCAL_REPLICAS}` } });
    }
    return wrap(() => h.scale(body.data.replicas))(req, reply);
  });
  await app.listen({ path: socketPath });
  return app;
}

/** One request to the running `local up`; a clear error when none is running. */
export function control(socketPath: string, method: "GET" | "POST", route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (!existsSync(socketPath)) {
      reject(new Error(`no local deployment is running for this state dir (${socketPath} is missing): start one with \`npm start\``));
      return;
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath, path: route, method, headers: payload ? { "content-type": "application/json" } : {} },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (data += d));
        res.on("end", () => {
          let parsed: { error?: { message: string } } | undefined;
          try {
            parsed = JSON.parse(data);
          } catch {
            reject(new Error(`unexpected answer from local up: ${data.slice(0, 200)}`));
            return;
          }
          if ((res.statusCode ?? 500) >= 400) reject(new Error(parsed?.error?.message ?? `HTTP ${res.statusCode}`));
          else resolve(parsed);
        });
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ECONNREFUSED" || e.code === "ENOENT" ? new Error(`no local deployment is running (stale ${socketPath}): start one with \`npm start\``) : e),
    );
    req.end(payload);
  });
}
