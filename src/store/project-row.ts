/** The projects table's row, the same in both SQL stores, and the Project it holds. */
import type { Project } from '../domain.js';

export interface ProjectRow {
  hash: string;
  name: string;
  jwt_secret: string;
  created_at: string;
}

export function projectFromRow(row: ProjectRow): Project {
  return {
    hash: row.hash,
    name: row.name,
    jwtSecret: row.jwt_secret,
    createdAt: row.created_at,
  };
}
