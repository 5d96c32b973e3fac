/**
 * Cleanup that must happen even on Ctrl-C: mounts, servers, work dirs. Each resource registers an undo
 * step and runs it in its own finally; on SIGINT/SIGTERM the steps still registered run in reverse.
 */
const steps = new Map<number, { what: string; fn: () => Promise<void> | void }>();
let next = 0;
let installed = false;
let interrupted = false;

/** True once SIGINT/SIGTERM arrived: nothing new should be started. */
export function isInterrupted(): boolean {
  return interrupted;
}

export function onCleanup(what: string, fn: () => Promise<void> | void): () => Promise<void> {
  install();
  const id = next++;
  steps.set(id, { what, fn });
  return async () => {
    const s = steps.get(id);
    if (!s) return;
    steps.delete(id);
    await s.fn();
  };
}

async function runAll(): Promise<void> {
  for (const id of [...steps.keys()].sort((a, b) => b - a)) {
    const s = steps.get(id);
    if (!s) continue; // undone meanwhile by an earlier step (e.g. a dir removed with its owner)
    steps.delete(id);
    try {
      await s.fn();
    } catch (e) {
      process.stderr.write(`cleanup of ${s.what} failed: ${(e as Error).message}\n`);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      interrupted = true;
      process.stderr.write(`\n${sig}: cleaning up ${steps.size} resource(s)\n`);
      // Let children that got the same Ctrl-C (initdb, pg_restore, ...) exit first, then undo twice:
      // a step that was half-way when the signal came may register one more resource.
      const pause = () => new Promise((r) => setTimeout(r, 500));
      pause()
        .then(runAll)
        .then(pause)
        .then(runAll)
        .finally(() => process.exit(130));
    });
  }
}
