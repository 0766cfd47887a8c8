/**
 * The SQLite store's checkpointer thread: its own connection to the database file, copying the
 * WAL's pages back into the file whenever the store asks. A checkpoint ends in two fsyncs, which
 * take milliseconds; here they hold up no one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export type CheckpointRequest = { kind: 'checkpoint' } | { kind: 'close' };

/** What `PRAGMA wal_checkpoint` answers: frames in the WAL, and how many of them are in the file. */
export interface CheckpointResult {
  kind: 'checkpointed';
  busy: number;
  log: number;
  checkpointed: number;
}

const port = parentPort;
if (port === null) throw new Error('sqlite-checkpoint-worker runs as a worker thread');
const { path } = workerData as { path: string };
const db = new Database(path, { timeout: 5000 });

port.on('message', (request: CheckpointRequest) => {
  if (request.kind === 'close') {
    db.close();
    port.close();
    return;
  }
  // PASSIVE copies what it can without waiting for, or blocking, the writer and readers.
  const [row] = db.pragma('wal_checkpoint(PASSIVE)') as Omit<CheckpointResult, 'kind'>[];
  const result: CheckpointResult = {
    kind: 'checkpointed',
    busy: row?.busy ?? 1,
    log: row?.log ?? 0,
    checkpointed: row?.checkpointed ?? 0,
  };
  port.postMessage(result);
});
