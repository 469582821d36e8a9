// Server-sent events over fetch(): the browser's EventSource cannot send an Authorization header, and a
// token in the URL (?access_token=) would end up in logs and history. This reads the same text/event-stream
// with the bearer header, resumes with Last-Event-ID after a drop (the cloud replays what was missed from
// its store), and waits the server's `retry:` (else 2 s, growing to 30 s) between attempts.
import * as session from './session.js';

export function openStream(path, { onEvent, onState }) {
  let lastEventId;
  let retryMs = 2000;
  let failures = 0;
  let stopped = false;
  let ctl;
  let timer;

  const state = (s, detail) => onState?.(s, detail);

  async function connect() {
    if (stopped) return;
    const s = session.current();
    if (!s) return;
    ctl = new AbortController();
    const headers = { accept: 'text/event-stream', authorization: `Bearer ${s.token}` };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    state('connecting');
    try {
      const res = await fetch(path, { headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' });
      if (res.status === 401) {
        session.clear('Your session has ended. Please log in again.');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      state('live');
      failures = 0;
      await read(res.body);
      if (!stopped) throw new Error('stream ended');
    } catch (err) {
      if (stopped) return;
      failures++;
      const wait = Math.min(30_000, retryMs * Math.min(failures, 15));
      state('reconnecting', `${err.message}; again in ${Math.round(wait / 1000)} s`);
      timer = setTimeout(connect, wait);
    }
  }

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = { id: undefined, event: 'message', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (ev.id !== undefined) lastEventId = ev.id;
          if (ev.data.length) onEvent({ id: ev.id ?? lastEventId, event: ev.event, data: ev.data.join('\n') });
          ev = { id: undefined, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) retryMs = Number(val);
      }
    }
  }

  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      ctl?.abort();
      state('closed');
    },
  };
}
