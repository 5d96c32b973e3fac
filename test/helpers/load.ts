/**
 * A bounded closed-loop HTTP load on 127.0.0.1: `clients` loops, each sending the next request as soon as
 * the previous one answers, until stop() (or maxMs, a safety bound). Records every failure.
 */
export interface LoadResult {
  ok: number;
  failed: { status?: number; error?: string; body?: string }[];
  snapshotIds: Set<string>;
}

export function startLoad(urls: string[], opts: { clients?: number; maxMs?: number } = {}): { stop(): Promise<LoadResult> } {
  const result: LoadResult = { ok: 0, failed: [], snapshotIds: new Set() };
  let running = true;
  const deadline = Date.now() + (opts.maxMs ?? 120_000);
  let i = 0;
  const loop = async () => {
    while (running && Date.now() < deadline) {
      const url = urls[i++ % urls.length];
      try {
        const res = await fetch(url);
        const body = await res.text();
        if (res.status === 200) {
          result.ok++;
          const id = res.headers.get("x-snapshot-id");
          if (id) result.snapshotIds.add(id);
        } else result.failed.push({ status: res.status, body: body.slice(0, 300) });
      } catch (e) {
        result.failed.push({ error: (e as Error).message });
      }
    }
  };
  const loops = Array.from({ length: opts.clients ?? 8 }, loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}
