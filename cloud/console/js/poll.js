// Runs `fn` now and every `ms` while the page is shown (not while the tab is hidden); an error is passed
// to `onError` and polling goes on. Returns a stop function.
export function poll(fn, ms, onError) {
  let stopped = false;
  let timer;
  const run = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch (err) {
        if (err?.name !== 'AbortError') onError?.(err);
      }
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
