/** A PostgreSQL schema of its own for each socket-base-pg start, dropped at its stop. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export function postgresUrl(): string {
  return process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

/** The database URL with the schema first on the search_path (how socket-base picks a schema). */
export function schemaUrl(schema: string): string {
  const base = postgresUrl();
  return `${base}${base.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
}

async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl(), connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createSchema(): Promise<string> {
  const schema = `bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient((client) => client.query(`CREATE SCHEMA ${schema}`));
  return schema;
}

export async function dropSchema(schema: string): Promise<void> {
  if (!/^bench_\d+_[0-9a-f]{8}$/.test(schema)) throw new Error(`not a bench schema: ${schema}`);
  await withClient((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}
