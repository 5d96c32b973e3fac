import pg from "pg";

/**
 * How column values become JSON. pg's defaults turn dates and timestamps into JS Dates (losing
 * microseconds and shifting `date` by the local zone) and bytea into Buffers; the API instead returns
 * PostgreSQL's own text for those, bigint and numeric as strings (exact), and non-finite floats as
 * strings ("NaN", "Infinity") because JSON has no such numbers.
 */
const OID = {
  bytea: 17,
  float4: 700,
  float8: 701,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  textArray: 1009,
  byteaArray: 1001,
  float4Array: 1021,
  float8Array: 1022,
  dateArray: 1182,
  timeArray: 1183,
  timestampArray: 1115,
  timestamptzArray: 1185,
  intervalArray: 1187,
  timetzArray: 1270,
} as const;

const asText = (v: string) => v;
const textArray = pg.types.getTypeParser(OID.textArray as unknown as Parameters<typeof pg.types.getTypeParser>[0], "text") as (v: string) => string[];
const float = (v: string): number | string => {
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
};
const floatArray = (v: string) => textArray(v).map((x) => (x === null ? null : float(x)));

const overrides = new Map<number, (v: string) => unknown>([
  [OID.bytea, asText],
  [OID.date, asText],
  [OID.time, asText],
  [OID.timestamp, asText],
  [OID.timestamptz, asText],
  [OID.interval, asText],
  [OID.timetz, asText],
  [OID.float4, float],
  [OID.float8, float],
  [OID.byteaArray, textArray],
  [OID.dateArray, textArray],
  [OID.timeArray, textArray],
  [OID.timestampArray, textArray],
  [OID.timestamptzArray, textArray],
  [OID.intervalArray, textArray],
  [OID.timetzArray, textArray],
  [OID.float4Array, floatArray],
  [OID.float8Array, floatArray],
]);

/** Passed as `types` to every pool the API opens (never changes pg's global parsers: others share them). */
export const apiTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (format !== "binary") {
      const p = overrides.get(oid);
      if (p) return p;
    }
    return pg.types.getTypeParser(oid as Parameters<typeof pg.types.getTypeParser>[0], format ?? "text");
  },
} as unknown as pg.CustomTypesConfig;
