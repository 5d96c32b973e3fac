import { z } from "zod";
import { badRequest } from "./errors";

/**
 * The opaque pagination cursor: base64url of `{"o": <order signature>, "v": [<key values as text>]}`,
 * the last row's values of the order columns then the key columns. The signature ties a cursor to its
 * table and order, so a cursor reused elsewhere is refused instead of silently skipping rows.
 */

const CursorBody = z.object({ o: z.string(), v: z.array(z.string().nullable()) }).strict();
const MAX_CURSOR = 16384;

export function encodeCursor(signature: string, values: (string | null)[]): string {
  return Buffer.from(JSON.stringify({ o: signature, v: values }), "utf8").toString("base64url");
}

export function decodeCursor(raw: string, signature: string, expected: number): (string | null)[] {
  const bad = (why: string) => badRequest("invalid_cursor", `cursor is not valid: ${why}; pass back the cursor of the previous page unchanged`, "cursor");
  if (raw.length > MAX_CURSOR) throw bad(`longer than ${MAX_CURSOR} characters`);
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw bad("not base64url");
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
  } catch {
    throw bad("not an encoded JSON object");
  }
  const r = CursorBody.safeParse(json);
  if (!r.success) throw bad("unexpected content");
  if (r.data.o !== signature) throw bad(`it belongs to another table or order (${r.data.o.slice(0, 200)}), not ${signature}`);
  if (r.data.v.length !== expected) throw bad(`it holds ${r.data.v.length} values, expected ${expected}`);
  return r.data.v;
}
