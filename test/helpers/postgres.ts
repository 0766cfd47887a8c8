/**
 * Private schemas on the real PostgreSQL server (TEST_POSTGRES_URL, by default 127.0.0.1:5432),
 * so that test runs never see each other's rows. Each URL carries its schema in `search_path`.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchemas {
  /** Creates a new empty schema and returns its name. */
  create(): Promise<string>;
  /** The server's URL with `search_path` set to the schema, optionally through another port. */
  urlFor(schema: string, port?: number): string;
  /** Runs a statement as the administrating connection (to look behind a store's back). */
  query<Row extends pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<Row>>;
  /** Drops every schema this set created, and disconnects. */
  dropAll(): Promise<void>;
}

export async function testSchemas(): Promise<TestSchemas> {
  const run = `sb_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  const created: string[] = [];
  return {
    async create() {
      const schema = `${run}_${created.length}`;
      created.push(schema);
      await admin.query(`CREATE SCHEMA ${schema}`);
      return schema;
    },
    urlFor(schema, port) {
      const url = new URL(POSTGRES_URL);
      if (port !== undefined) url.port = String(port);
      const separator = url.search ? '&' : '?';
      return `${url.href}${separator}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    query: (text, values) => admin.query(text, values),
    async dropAll() {
      for (const schema of created) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}
