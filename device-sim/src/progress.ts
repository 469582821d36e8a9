// A once-a-second progress line on stderr, so that stdout stays clean for --json-summary.

export interface ProgressSnapshot {
  elapsedMs: number;
  devices: number;
  connected: number;
  published: number;
  acked: number;
  errors: number;
}

export interface ProgressOptions {
  intervalMs?: number;
  write?: (line: string) => void;
}

export function formatProgress(now: ProgressSnapshot, ratePerS: number): string {
  const secs = (now.elapsedMs / 1000).toFixed(1);
  return (
    `[device-sim] ${secs}s connected=${now.connected}/${now.devices} published=${now.published} ` +
    `acked=${now.acked} rate=${ratePerS.toFixed(1)}/s errors=${now.errors}`
  );
}

/**
 * Starts the progress line; the returned function stops it and prints one last line. The rate is acked
 * messages per second over the last interval, which is what the far end actually took.
 */
export function startProgress(snapshot: () => ProgressSnapshot, options: ProgressOptions = {}): () => void {
  const intervalMs = options.intervalMs ?? 1000;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  let last = snapshot();
  const tick = (): void => {
    const now = snapshot();
    const dt = (now.elapsedMs - last.elapsedMs) / 1000;
    write(formatProgress(now, dt > 0 ? (now.acked - last.acked) / dt : 0));
    last = now;
  };
  const timer = setInterval(tick, intervalMs);
  // Progress must never be what keeps the process alive.
  timer.unref();
  return () => {
    clearInterval(timer);
    const now = snapshot();
    const secs = now.elapsedMs / 1000;
    write(`${formatProgress(now, secs > 0 ? now.acked / secs : 0)} (done; rate is the run average)`);
  };
}
