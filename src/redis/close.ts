/**
 * Ending an ioredis client, shared by the bus and the cluster state: resolves once it is closed,
 * whatever state its link is in.
 */
import type { Redis } from 'ioredis';

export function closeRedis(redis: Redis): Promise<void> {
  return new Promise<void>((resolve) => {
    if (redis.status === 'end') {
      resolve();
      return;
    }
    if (redis.status === 'reconnecting') {
      // Between attempts there is no socket to close, hence no 'end' event: clearing the
      // reconnect timer is all there is to do.
      redis.disconnect();
      resolve();
      return;
    }
    redis.once('end', () => resolve());
    // QUIT is answered after every command sent before it, so what was taken completes.
    if (redis.status === 'ready') redis.quit().catch(() => redis.disconnect());
    else redis.disconnect();
  });
}
