/**
 * A plain-text summary of a V8 `.cpuprofile` (as written by `node --cpu-prof`): where the
 * process spent its CPU by self time, grouped by package / module, and the heaviest
 * functions. `bench/run.ts` prints it for the authority when BENCH_PROFILE=1; it also runs
 * on its own: `node --import tsx bench/profile.ts <file.cpuprofile> [top]`.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileWindow {
  /** Monotonic µs, the clock of `process.hrtime` and of the profile's timestamps. */
  readonly fromUs: number;
  readonly toUs: number;
}

/** Which package or part of the program a frame belongs to. */
function categoryOf({ functionName, url }: ProfileNode['callFrame']): string {
  if (!url) return functionName.startsWith('(') ? functionName : `native: ${functionName || '(anonymous)'}`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return url;
  const own = /\/dist\/(src\/.*)$/.exec(url);
  if (own) return `authority ${own[1]}`;
  return url.replace(/^file:\/\//, '');
}

/** The self time of each node (µs), over the whole profile or only the samples inside one of `windows`. */
function selfTimes(profile: Profile, windows?: readonly ProfileWindow[]): Map<number, number> {
  const self = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (windows && !windows.some((window) => at >= window.fromUs && at <= window.toUs)) return;
    self.set(id, (self.get(id) ?? 0) + delta);
  });
  return self;
}

export function summariseProfile(file: string, { top = 15, windows }: { top?: number; windows?: readonly ProfileWindow[] } = {}): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = selfTimes(profile, windows);
  let total = 0;
  let idle = 0;
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, micros] of self) {
    const frame = byId.get(id)!.callFrame;
    total += micros;
    if (frame.functionName === '(idle)') {
      idle += micros;
      continue;
    }
    const category = categoryOf(frame);
    categories.set(category, (categories.get(category) ?? 0) + micros);
    const name = `${frame.functionName || '(anonymous)'} ${frame.url ? `${categoryOf(frame)}:${frame.lineNumber + 1}` : ''}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + micros);
  }
  const busy = total - idle;
  const lines = [
    `main thread: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / Math.max(total, 1)).toFixed(0)}%); shares below are of busy time`,
  ];
  const list = (title: string, entries: Map<string, number>) => {
    lines.push(title);
    for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      lines.push(`  ${((100 * micros) / Math.max(busy, 1)).toFixed(1).padStart(5)}%  ${name}`);
    }
  };
  list('by package / module (self time):', categories);
  list('by function (self time):', functions);
  list('authority functions (inclusive: self + callees, synchronous stacks only):', inclusiveOwn(profile, byId, self));
  return lines.join('\n');
}

/**
 * For each of the authority's own functions (dist/src), the time of the samples whose stack
 * contains it, counted once per sample even under recursion.
 */
function inclusiveOwn(profile: Profile, byId: Map<number, ProfileNode>, self: Map<number, number>): Map<string, number> {
  const totals = new Map<string, number>();
  const onStack = new Map<string, number>();
  const visit = (id: number) => {
    const node = byId.get(id)!;
    const frame = node.callFrame;
    const own = /\/dist\/src\/(.*)$/.exec(frame.url);
    const key = own ? `${frame.functionName || '(anonymous)'} ${own[1]}:${frame.lineNumber + 1}` : undefined;
    if (key) onStack.set(key, (onStack.get(key) ?? 0) + 1);
    const micros = frame.functionName === '(idle)' ? 0 : (self.get(id) ?? 0);
    if (micros > 0) for (const name of onStack.keys()) totals.set(name, (totals.get(name) ?? 0) + micros);
    for (const child of node.children ?? []) visit(child);
    if (key) {
      const count = onStack.get(key)! - 1;
      if (count === 0) onStack.delete(key);
      else onStack.set(key, count);
    }
  };
  visit(profile.nodes[0]!.id);
  return totals;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(summariseProfile(file, { top: Number(process.argv[3] ?? 15) }));
}
