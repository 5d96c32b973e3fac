/** Progress events of the image steps: `phase` is "layer" (tarring), "base" (fetching the base image) or "push". */
export interface Progress {
  phase: string;
  bytesDone: number;
  bytesTotal: number;
}

/** Reports at most every `everyMs` (the bake prints each report), and always the final one. */
export function progressThrottle(phase: string, bytesTotal: number, onProgress?: (e: Progress) => void, everyMs = 200): (bytesDone: number, final?: boolean) => void {
  let last = 0;
  return (bytesDone, final = false) => {
    if (!onProgress) return;
    const now = Date.now();
    if (!final && now - last < everyMs) return;
    last = now;
    onProgress({ phase, bytesDone, bytesTotal });
  };
}
