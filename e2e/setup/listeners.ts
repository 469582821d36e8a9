// Which local addresses listen on a TCP port, read from /proc/net/tcp and tcp6 (Linux): lets a test
// check that a service binds loopback only, without trying to reach it from another machine.

function ipv4(hex: string): string {
  // /proc prints the address as a little-endian 32-bit word.
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
}

function ipv6(hex: string): string {
  // Four little-endian 32-bit words; mapped to the usual text only for the cases tests care about.
  const words = hex.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
  const full = words.join('');
  if (/^0+$/.test(full)) return '::';
  if (full === '00000000000000000000000000000001') return '::1';
  if (full.startsWith('00000000000000000000ffff')) return `::ffff:${ipv4(words[3]!.match(/../g)!.reverse().join(''))}`;
  return full;
}

/** The addresses something listens on at `port` (e.g. ['127.0.0.1'], ['0.0.0.0'], ['::']). */
export async function listenAddresses(port: number): Promise<string[]> {
  const { readFileSync } = await import('node:fs');
  const out: string[] = [];
  for (const [file, decode] of [['/proc/net/tcp', ipv4], ['/proc/net/tcp6', ipv6]] as const) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A: LISTEN
      const [addr, p] = f[1]!.split(':');
      if (Number.parseInt(p!, 16) === port) out.push(decode(addr!));
    }
  }
  return out;
}

/** Loopback only: 127.0.0.0/8 or ::1. */
export const isLoopback = (a: string) => a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');
