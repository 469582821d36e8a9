// Where the CPU time goes: sums self time of V8 .cpuprofile files (node --cpu-prof) per function and per
// group (an npm package, a file of ours, node internals, GC, idle), largest first.
// Run on its own: npx tsx bench/profile-summary.ts bench-results/profiles/edge/*.cpuprofile
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  byGroup: { name: string; ms: number; pct: number }[];
  byFunction: { name: string; ms: number; pct: number }[];
}

function groupOf(url: string, fn: string): string {
  if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') return fn;
  if (!url) return `(native) ${fn || '(anonymous)'}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const ours = /\/(proto|edge|cloud|device-sim|scripts)\/(.*)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  return url;
}

export function summariseProfiles(files: string[], top = 20): ProfileSummary {
  const fnMs = new Map<string, number>();
  const groupMs = new Map<string, number>();
  let total = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    // Self time: each sample's delta goes to the node that was on top of the stack.
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]!);
      const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
      if (!n) continue;
      const { functionName, url, lineNumber } = n.callFrame;
      const g = groupOf(url, functionName);
      const short = url ? `${functionName || '(anonymous)'} ${url.replace(/^file:\/\/.*?\/(node_modules|proto|edge|cloud|device-sim)\//, '$1/')}:${lineNumber + 1}` : functionName;
      fnMs.set(short, (fnMs.get(short) ?? 0) + dt);
      groupMs.set(g, (groupMs.get(g) ?? 0) + dt);
      total += dt;
    }
  }
  const busy = total - (groupMs.get('(idle)') ?? 0);
  groupMs.delete('(idle)');
  fnMs.delete('(idle)');
  const list = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), pct: Math.round((ms / busy) * 1000) / 10 }));
  return { totalMs: Math.round(busy), byGroup: list(groupMs), byFunction: list(fnMs) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const files = process.argv.slice(2);
  if (!files.length) {
    process.stderr.write('usage: npx tsx bench/profile-summary.ts <file.cpuprofile>...\n');
    process.exit(2);
  }
  const s = summariseProfiles(files, 25);
  process.stdout.write(`busy (not idle) time sampled: ${(s.totalMs / 1000).toFixed(1)} s; percentages are of busy time\n\nby package / file:\n`);
  for (const g of s.byGroup) process.stdout.write(`  ${g.pct.toFixed(1).padStart(5)}%  ${g.name}\n`);
  process.stdout.write('\nby function (self time):\n');
  for (const g of s.byFunction) process.stdout.write(`  ${g.pct.toFixed(1).padStart(5)}%  ${g.name}\n`);
}
