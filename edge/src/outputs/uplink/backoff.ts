// Retry delays: exponential with full jitter and a cap, so many edges that lost the cloud at once do
// not come back in lockstep (AWS Architecture Blog, "Exponential Backoff And Jitter").

export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

/** Delay before retry number `attempt` (0 = first retry): uniform in [0, min(max, initial * factor^attempt)]. */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxDelayMs, o.initialDelayMs * Math.pow(o.factor, attempt));
  return Math.floor(random() * ceiling);
}

/** Resolves after ms, or early (without error) when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
