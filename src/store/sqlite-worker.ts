/**
 * The thread of SqliteWorkerStore: it owns the database connection and runs a SqliteStore on it,
 * so that every commit, read, purge and wait for another process's lock happens here and the
 * server's event loop only frames and writes. Group commit, the retries at a held lock and the
 * checkpoints are SqliteStore's own, unchanged: this file only unpacks what the event loop sends
 * and packs what it answers (see sqlite-worker-wire.ts).
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import {
  type CallMethod,
  type FromWorker,
  packAnswers,
  type ToWorker,
  toWire,
  unpackAppends,
} from './sqlite-worker-wire.js';
import type { Store } from './store.js';

export interface SqliteWorkerData {
  path: string;
  busyDeadlineMs: number | undefined;
  idempotencyWindowMs: number | undefined;
  /** Whether the event loop wants a message per committed batch (it has an onBatch hook). */
  reportBatches: boolean;
}

if (parentPort === null) throw new Error('sqlite-worker runs as a worker thread');
const port: MessagePort = parentPort;
const data = workerData as SqliteWorkerData;

const post = (message: FromWorker, transfer?: ArrayBuffer[]): void => {
  port.postMessage(message, transfer);
};

const options: SqliteStoreOptions = {
  onFault: (error, what) => post({ kind: 'fault', error: toWire(error), what }),
};
if (data.busyDeadlineMs !== undefined) options.busyDeadlineMs = data.busyDeadlineMs;
if (data.idempotencyWindowMs !== undefined) options.idempotencyWindowMs = data.idempotencyWindowMs;
/** Commits (size, seconds) not yet reported: they travel with the next answers. */
let commits: number[] = [];
if (data.reportBatches) options.onBatch = (size, seconds) => commits.push(size, seconds);

let opened: SqliteStore | undefined;
try {
  opened = SqliteStore.open(data.path, options);
  post({ kind: 'ready' });
} catch (error) {
  // The event loop rejects its open() with this; the thread then ends, holding nothing.
  post({ kind: 'opening-failed', error: toWire(error) });
  port.close();
}
if (opened !== undefined) serve(opened);

/**
 * The answers of each batch go out after those of the batch before it, so that the event loop
 * settles appends in the order SqliteStore committed them (seq order within a room).
 */
function serve(store: SqliteStore): void {
  let answered: Promise<void> = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    switch (message.kind) {
      case 'append': {
        const settled = Promise.allSettled(
          unpackAppends(message.appends).map((append) => store.append(append)),
        );
        const { batch } = message;
        answered = answered
          .then(() => settled)
          .then((results) => {
            const answers = packAnswers(results);
            post({ kind: 'appended', batch, answers, commits }, [
              answers.numbers.buffer as ArrayBuffer,
            ]);
            commits = [];
          });
        return;
      }
      case 'call': {
        const { call } = message;
        invoke(store, message.method, message.args).then(
          (value) => post({ kind: 'answered', call, value }),
          (error: unknown) => post({ kind: 'call-failed', call, error: toWire(error) }),
        );
        return;
      }
      case 'close':
        // SqliteStore.close waits for every queued append, and so for their answers' posting.
        void store
          .close()
          .then(() => answered)
          .then(() => {
            post({ kind: 'closed' });
            port.close();
          });
        return;
    }
  });
}

/** Calls a Store method by name; a synchronous throw becomes a rejection. */
async function invoke(target: Store, method: CallMethod, args: unknown[]): Promise<unknown> {
  const fn = target[method] as (...args: unknown[]) => Promise<unknown>;
  return fn.apply(target, args);
}
