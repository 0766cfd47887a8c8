/** Polling for states that settle after a fault, where no event says when. */

export const EVENTUALLY_MS = 10_000;

/** Polls until `check` holds, every 50 ms, and fails after `deadlineMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  deadlineMs = EVENTUALLY_MS,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the server's /readyz answers `status`. */
export function readyzAnswers(server: { url: string }, status: number): Promise<void> {
  return eventually(
    `/readyz answers ${status}`,
    async () => (await fetch(`${server.url}/readyz`)).status === status,
  );
}
