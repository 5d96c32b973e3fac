/**
 * Name patterns for --schema / --include-table / --exclude-table, with psql's (and pg_dump's) rules:
 * unquoted letters fold to lower case, `*` is any run of characters, `?` any one character, `.`
 * separates schema from name, other regular-expression characters keep their meaning; inside double
 * quotes everything is literal and `""` is a quote. A pattern must match the whole name.
 */

export class PatternError extends Error {
  constructor(option: string, pattern: string, detail: string) {
    super(`${option} ${JSON.stringify(pattern)}: ${detail}`);
    this.name = "PatternError";
  }
}

const REGEX_SPECIAL = "|*+?()[]{}.^$\\";

export interface NamePattern {
  text: string;
  /** Matches the schema; undefined when the pattern has no schema part (any baked schema). */
  schema?: RegExp;
  name: RegExp;
}

/** Splits on unquoted dots and turns each part into an anchored regular expression. */
function parts(option: string, pattern: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inQuotes = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '"') {
      if (inQuotes && pattern[i + 1] === '"') {
        cur += '"';
        i++;
      } else inQuotes = !inQuotes;
    } else if (inQuotes) {
      cur += REGEX_SPECIAL.includes(ch) ? `\\${ch}` : ch;
    } else if (ch === ".") {
      out.push(cur);
      cur = "";
    } else if (ch === "*") cur += ".*";
    else if (ch === "?") cur += ".";
    else if (ch === "$") cur += "\\$";
    else cur += ch >= "A" && ch <= "Z" ? ch.toLowerCase() : ch;
  }
  if (inQuotes) throw new PatternError(option, pattern, "unterminated double quote");
  out.push(cur);
  if (out.some((p) => p === "")) throw new PatternError(option, pattern, "empty name part");
  return out;
}

function compile(option: string, pattern: string, source: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`, "u");
  } catch (e) {
    throw new PatternError(option, pattern, `invalid pattern (${(e as Error).message})`);
  }
}

/** `[schema.]name` for tables. */
export function tablePattern(option: string, pattern: string): NamePattern {
  const p = parts(option, pattern);
  if (p.length > 2) throw new PatternError(option, pattern, "too many dotted parts (write schema.table)");
  return p.length === 2
    ? { text: pattern, schema: compile(option, pattern, p[0]), name: compile(option, pattern, p[1]) }
    : { text: pattern, name: compile(option, pattern, p[0]) };
}

/** A schema name pattern (no dots). */
export function schemaPattern(option: string, pattern: string): NamePattern {
  const p = parts(option, pattern);
  if (p.length !== 1) throw new PatternError(option, pattern, "a schema pattern has no dots (quote the name if it contains one)");
  return { text: pattern, name: compile(option, pattern, p[0]) };
}

export function matches(p: NamePattern, schema: string, name: string): boolean {
  return (p.schema === undefined || p.schema.test(schema)) && p.name.test(name);
}

/** An exact, quoted pattern for pg_dump (-T / -N): nothing in it is special. */
export function quoteExact(...names: string[]): string {
  return names.map((n) => `"${n.replace(/"/g, '""')}"`).join(".");
}
