// The durable outbox of local notifications: one JSON line per fact, appended and fdatasync'ed before the
// fact is acted on, so an edge restart neither loses a pending notification nor forgets which targets it
// already notified (a batch resent after the restart must still say so).
//
//   {"op":"notify","k":"<source event id>|<rule>|<target>","source":…,"target":…,"rule":…,"key":"ev_…","body":"…","at":ms}
//   {"op":"done","k":…,"outcome":"delivered"|"dead"|"superseded","at":ms}
//
// At open the file is read (a torn last line, from a crash mid-append, is skipped) and rewritten without
// finished entries older than retainMs (writeFileAtomic: temporary file, fsync, rename, fsync the folder).
import { mkdirSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic-file.ts';

export type EntryStatus = 'pending' | 'delivered' | 'dead' | 'superseded';

export interface OutboxEntry {
  /** `<source event id>|<rule id>|<target id>`. */
  k: string;
  source: string;
  target: string;
  rule: string;
  /** The Idempotency-Key: the event_id the cloud gives the same firing. */
  key: string;
  /** The raw JSON body, signed as sent. */
  body: string;
  at: number;
  status: EntryStatus;
  doneAt?: number;
}

type Line =
  | { op: 'notify'; k: string; source: string; target: string; rule: string; key: string; body: string; at: number }
  | { op: 'done'; k: string; outcome: Exclude<EntryStatus, 'pending'>; at: number };

export const entryKey = (sourceEventId: string, ruleId: string, targetId: string) => `${sourceEventId}|${ruleId}|${targetId}`;

export class LocalOutbox {
  private readonly entries = new Map<string, OutboxEntry>();
  private readonly bySource = new Map<string, Set<string>>();
  private fh: FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private lines = 0;
  /** Lines that could not be read at open (a torn last line after a crash). */
  skippedLines = 0;

  private constructor(
    readonly file: string,
    private readonly retainMs: number,
    private readonly now: () => number,
  ) {}

  static async open(file: string, o: { retainMs: number; now?: () => number }): Promise<LocalOutbox> {
    const ob = new LocalOutbox(file, o.retainMs, o.now ?? Date.now);
    mkdirSync(dirname(file), { recursive: true });
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      let l: Line;
      try {
        l = JSON.parse(raw) as Line;
      } catch {
        ob.skippedLines++;
        continue;
      }
      ob.apply(l);
    }
    ob.rewrite();
    ob.fh = await open(file, 'a', 0o600);
    return ob;
  }

  private apply(l: Line): void {
    if (l.op === 'notify') {
      if (this.entries.has(l.k)) return;
      this.entries.set(l.k, { k: l.k, source: l.source, target: l.target, rule: l.rule, key: l.key, body: l.body, at: l.at, status: 'pending' });
      let s = this.bySource.get(l.source);
      if (!s) this.bySource.set(l.source, (s = new Set()));
      s.add(l.k);
    } else if (l.op === 'done') {
      const e = this.entries.get(l.k);
      if (e && e.status === 'pending') Object.assign(e, { status: l.outcome, doneAt: l.at });
    }
  }

  private forget(e: OutboxEntry): void {
    this.entries.delete(e.k);
    const s = this.bySource.get(e.source);
    s?.delete(e.k);
    if (s?.size === 0) this.bySource.delete(e.source);
  }

  /** Rewrites the file with what is still needed (synchronously: at open, or inside the append chain). */
  private rewrite(): void {
    const cutoff = this.now() - this.retainMs;
    for (const e of [...this.entries.values()]) if (e.status !== 'pending' && (e.doneAt ?? e.at) < cutoff) this.forget(e);
    const out: string[] = [];
    for (const e of this.entries.values()) {
      out.push(JSON.stringify({ op: 'notify', k: e.k, source: e.source, target: e.target, rule: e.rule, key: e.key, body: e.body, at: e.at } satisfies Line));
      if (e.status !== 'pending') out.push(JSON.stringify({ op: 'done', k: e.k, outcome: e.status, at: e.doneAt ?? e.at } satisfies Line));
    }
    writeFileAtomic(this.file, out.length ? out.join('\n') + '\n' : '');
    this.lines = out.length;
  }

  /** Appends lines and fdatasyncs; resolves once they are on disk. Facts take effect in memory only then. */
  private append(lines: Line[]): Promise<void> {
    const run = async () => {
      if (!this.fh) throw new Error('local alert outbox is closed');
      await this.fh.write(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      await this.fh.datasync();
      for (const l of lines) this.apply(l);
      this.lines += lines.length;
      // Compact when most lines are no longer needed (finished long ago, or superseded by their done line).
      if (this.lines > 1000 && this.lines > 4 * this.entries.size) {
        await this.fh.close();
        this.fh = undefined;
        this.rewrite();
        this.fh = await open(this.file, 'a', 0o600);
      }
    };
    const p = this.chain.then(run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Records notifications to make (idempotent per source event × rule × target); resolves once durable. */
  async notify(items: { source: string; target: string; rule: string; key: string; body: string }[]): Promise<OutboxEntry[]> {
    const at = this.now();
    const keyOf = (i: { source: string; rule: string; target: string }) => entryKey(i.source, i.rule, i.target);
    const fresh = items.filter((i, n) => !this.entries.has(keyOf(i)) && items.findIndex((j) => keyOf(j) === keyOf(i)) === n);
    if (fresh.length) await this.append(fresh.map((i) => ({ op: 'notify', k: keyOf(i), ...i, at })));
    return items.map((i) => this.entries.get(keyOf(i))).filter((e): e is OutboxEntry => e !== undefined);
  }

  /** Records how a notification ended; resolves once durable. */
  async done(k: string, outcome: Exclude<EntryStatus, 'pending'>): Promise<void> {
    const e = this.entries.get(k);
    if (!e || e.status !== 'pending') return;
    await this.append([{ op: 'done', k, outcome, at: this.now() }]);
  }

  get(k: string): OutboxEntry | undefined {
    return this.entries.get(k);
  }

  /** Entries of one source event (any status). */
  ofSource(sourceEventId: string): OutboxEntry[] {
    const s = this.bySource.get(sourceEventId);
    return s ? [...s].map((k) => this.entries.get(k)!).filter(Boolean) : [];
  }

  has(sourceEventId: string): boolean {
    return this.bySource.has(sourceEventId);
  }

  pending(): OutboxEntry[] {
    return [...this.entries.values()].filter((e) => e.status === 'pending');
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
  }
}
