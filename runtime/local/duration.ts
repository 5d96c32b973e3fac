const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "5m", "1h30m", "250ms" -> milliseconds; the error names the option. */
export function parseDuration(text: string, option = "--refresh-every"): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  const ms = parts.reduce((sum, [, n, u]) => sum + Number(n) * UNITS[u], 0);
  if (!parts.length || parts.map((p) => p[0]).join("") !== text.trim() || !(ms > 0)) {
    throw new Error(`${option} must be a duration like 30s, 5m, 1h or 1h30m (got "${text}")`);
  }
  return ms;
}
