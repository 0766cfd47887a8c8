export interface ReconnectOptions {
  /** The shortest wait before a reconnect (default 500 ms). */
  minDelayMs?: number;
  /** The longest (default 20000 ms). */
  maxDelayMs?: number;
}

export const DEFAULT_RECONNECT = { minDelayMs: 500, maxDelayMs: 20_000 } as const;

/**
 * The wait before reconnect attempt `attempt` (0 for the first after a drop): exponential, with
 * full jitter, between minDelayMs and maxDelayMs. The ceiling doubles with every failed attempt, and
 * the wait is drawn uniformly below it, so that clients dropped together do not return together.
 */
export function backoffDelay(
  attempt: number,
  options: { minDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  const { minDelayMs, maxDelayMs } = options;
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt + 1, 30));
  return minDelayMs + random() * (ceiling - minDelayMs);
}
