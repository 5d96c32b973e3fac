import type pg from "pg";
import { quoteExact } from "./patterns";

/**
 * The master database's own properties, recreated by the bake itself rather than by `pg_dump --create`
 * (which would also carry the master's role-specific settings and owner). Collation matters: it
 * decides text ordering, so the baked database must sort exactly as the master does.
 */
export interface DatabaseInfo {
  name: string;
  encoding: string;
  collate: string;
  ctype: string;
  /** "c" libc, "i" icu, "b" builtin (17+). */
  provider: string;
  /** ICU/builtin locale when provider is not libc. */
  locale?: string;
  comment?: string;
  /** ALTER DATABASE ... SET entries for all roles: "name=value". */
  settings: string[];
}

export async function loadDatabaseInfo(c: pg.ClientBase, serverVersionNum: number): Promise<DatabaseInfo> {
  const provider = serverVersionNum >= 150000 ? "d.datlocprovider::text" : "'c'";
  const locale = serverVersionNum >= 170000 ? "d.datlocale" : serverVersionNum >= 150000 ? "d.daticulocale" : "NULL::text";
  const r = await c.query(
    `SELECT d.datname AS name, pg_catalog.pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
            ${provider} AS provider, ${locale} AS locale, pg_catalog.shobj_description(d.oid, 'pg_database') AS comment,
            coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}') AS settings
       FROM pg_catalog.pg_database d WHERE d.datname = current_database()`,
  );
  const row = r.rows[0];
  return {
    name: row.name,
    encoding: row.encoding,
    collate: row.collate,
    ctype: row.ctype,
    provider: row.provider,
    locale: row.locale ?? undefined,
    comment: row.comment ?? undefined,
    settings: row.settings,
  };
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** CREATE DATABASE with the master's encoding and locale, for a server of major `targetMajor` (15+). */
export function createDatabaseSql(d: DatabaseInfo, targetMajor: number): string {
  const parts = [`CREATE DATABASE ${quoteExact(d.name)} TEMPLATE template0 ENCODING ${lit(d.encoding)}`];
  parts.push(`LC_COLLATE ${lit(d.collate)} LC_CTYPE ${lit(d.ctype)}`);
  if (d.provider === "i") parts.push(`LOCALE_PROVIDER icu ICU_LOCALE ${lit(d.locale ?? "")}`);
  else if (d.provider === "b" && targetMajor >= 17) parts.push(`LOCALE_PROVIDER builtin BUILTIN_LOCALE ${lit(d.locale ?? "C")}`);
  else if (targetMajor >= 15) parts.push("LOCALE_PROVIDER libc");
  return parts.join(" ");
}

/**
 * Re-applies the master's database-wide settings (search_path and the like, which change what reader
 * queries see). set_config + FROM CURRENT lets the server parse the stored value instead of us.
 */
export async function applyDatabaseSettings(c: pg.ClientBase, d: DatabaseInfo): Promise<void> {
  for (const s of d.settings) {
    const eq = s.indexOf("=");
    const name = s.slice(0, eq);
    const value = s.slice(eq + 1);
    await c.query("SELECT pg_catalog.set_config($1, $2, false)", [name, value]);
    await c.query(`ALTER DATABASE ${quoteExact(d.name)} SET ${quoteExact(name)} FROM CURRENT`);
  }
  if (d.comment !== undefined) await c.query(`COMMENT ON DATABASE ${quoteExact(d.name)} IS ${lit(d.comment)}`);
}
