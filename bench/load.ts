/**
 * One HTTP workload driven by autocannon in this process: a warm-up, then measured runs,
 * each for a fixed duration with a fixed number of connections (one request in flight per
 * connection). A measurement may be several runs (`Part`s) interleaved with other
 * workloads' by the caller, then `combine`d. Every response's latency is recorded here so
 * that any percentile can be reported; every non-2xx response and socket error is counted,
 * in the warm-up too. While a measured run lasts, the CPU of this process (the load
 * generator) and of the processes being measured is sampled from /proc.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { percentile } from './stats.js';

/** What one connection sends next and learns from each response (chained workloads). */
export interface ConnectionScript {
  /** The next request's body. */
  nextBody(): string;
  /** Told every response, before the connection's next request is built. */
  onResponse(status: number, body: string): void;
}

export interface Workload {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly connections: number;
  /** A fresh script per connection, for workloads where each request depends on the previous response. */
  readonly script?: () => ConnectionScript;
  /** A 2xx response whose body fails this check counts as an error too. */
  readonly expect?: (body: string) => boolean;
}

export interface Watched {
  readonly name: string;
  readonly pid: number;
}

export interface LoadResult {
  /** Responses in the measured run. */
  readonly requests: number;
  readonly seconds: number;
  /** 2xx responses per second in the measured run. */
  readonly rps: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Non-2xx responses plus socket errors and timeouts, warm-up included. */
  readonly errors: number;
  readonly errorDetail: {
    readonly statuses: Record<string, number>;
    readonly unexpectedBodies: number;
    readonly socketErrors: number;
    readonly timeouts: number;
    readonly samples: string[];
  };
  /** CPU used during the measured run, in cores, by the load generator (this process) and each watched process. */
  readonly cpu: Record<string, number>;
  /**
   * Each measured run's start and end, on the monotonic clock (µs, the clock of V8's CPU
   * profiles): not the time between them, when other sides ran or codes were minted.
   */
  readonly windows: readonly { readonly fromUs: number; readonly toUs: number }[];
  /** How many measured runs this is made of. */
  readonly rounds: number;
}

/** Now on the monotonic clock, in µs: the time base of `--cpu-prof` profiles. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

export interface RunCounts {
  ok: number;
  unexpectedBodies: number;
  total: number;
  statuses: Record<string, number>;
  socketErrors: number;
  timeouts: number;
  samples: string[];
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all threads) or of one thread, in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number, tid?: number): number | undefined {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from the first line of /proc/stat. */
function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function snapshot(watched: readonly Watched[]): Map<string, number | undefined> {
  const values = new Map<string, number | undefined>();
  values.set('machine', machineBusySeconds());
  const self = process.cpuUsage();
  values.set('loadgen', (self.user + self.system) / 1e6);
  for (const { name, pid } of watched) {
    values.set(name, cpuSeconds(pid));
    // The main thread alone (tid = pid): the event loop; the rest is the libuv pool, GC and JIT threads.
    values.set(`${name}.main`, cpuSeconds(pid, pid));
  }
  return values;
}

/**
 * Starts measuring CPU; the returned function gives, per name, the cores used since:
 * `loadgen` (this process), each watched process and its `.main` thread, `machine` (all
 * busy cores) and `other` (the machine minus this process and the watched ones: whatever
 * else runs on the box, e.g. other people's tests).
 */
export function cpuWindow(watched: readonly Watched[]): () => Record<string, number> {
  const before = snapshot(watched);
  const started = performance.now();
  return () => {
    const after = snapshot(watched);
    const seconds = (performance.now() - started) / 1000;
    const cores: Record<string, number> = {};
    for (const [name, value] of after) {
      const start = before.get(name);
      if (value !== undefined && start !== undefined) cores[name] = round((value - start) / seconds, 2);
    }
    if (cores.machine !== undefined) {
      const ours = (cores.loadgen ?? 0) + watched.reduce((sum, { name }) => sum + (cores[name] ?? 0), 0);
      cores.other = round(Math.max(0, cores.machine - ours), 2);
    }
    return cores;
  };
}

const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;

async function runOnce(workload: Workload, seconds: number, latencies: number[] | undefined): Promise<RunCounts & { seconds: number }> {
  const counts: RunCounts = { ok: 0, unexpectedBodies: 0, total: 0, statuses: {}, socketErrors: 0, timeouts: 0, samples: [] };
  const sample = (text: string) => {
    if (counts.samples.length < 5) counts.samples.push(text.slice(0, 300));
  };
  const headers = workload.headers ?? {};
  const request = (script?: ConnectionScript): autocannon.Request => ({
    method: workload.method,
    headers,
    ...(workload.body !== undefined && { body: workload.body }),
    ...(script && { setupRequest: (req: autocannon.Request) => ({ ...req, body: script.nextBody() }) }),
    onResponse(status: number, body: string) {
      script?.onResponse(status, body);
      if (status < 200 || status >= 300) sample(`${status} ${body}`);
      else if (workload.expect && !workload.expect(body)) {
        counts.unexpectedBodies += 1;
        sample(`${status} unexpected body: ${body}`);
      }
    },
  });
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: workload.url,
        connections: workload.connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
        requests: [request()],
        ...(workload.script && {
          setupClient(client: autocannon.Client) {
            client.setRequests([request(workload.script!())]);
          },
        }),
      },
      (err, done) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(done)),
    );
    instance.on('response', (_client, status, _bytes, responseTime) => {
      counts.total += 1;
      if (status >= 200 && status < 300) counts.ok += 1;
      else counts.statuses[status] = (counts.statuses[status] ?? 0) + 1;
      latencies?.push(responseTime);
    });
    instance.on('reqError', (err: unknown) => {
      sample(`socket error: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  counts.socketErrors = result.errors - result.timeouts;
  counts.timeouts = result.timeouts;
  return { ...counts, seconds: (performance.now() - started) / 1000 };
}

/** One measured run: its counts, its latencies, and the CPU seconds each process spent in it. */
export interface Part {
  readonly counts: RunCounts;
  readonly seconds: number;
  readonly latencies: number[];
  /** CPU seconds (not cores) per name, as `cpuWindow` names them. */
  readonly cpuSeconds: Record<string, number>;
  readonly window: { readonly fromUs: number; readonly toUs: number };
}

/** An unmeasured run: its errors still count. */
export function warmUp(workload: Workload, seconds: number): Promise<RunCounts> {
  return runOnce(workload, seconds, undefined);
}

export async function measurePart(workload: Workload, seconds: number, watched: readonly Watched[] = []): Promise<Part> {
  const latencies: number[] = [];
  const cpuUsed = cpuWindow(watched);
  const fromUs = monotonicMicros();
  const measured = await runOnce(workload, seconds, latencies);
  const toUs = monotonicMicros();
  return { counts: measured, seconds: measured.seconds, latencies, cpuSeconds: coreSeconds(cpuUsed(), measured.seconds), window: { fromUs, toUs } };
}

/** Cores over a window of `seconds` → CPU seconds, so that windows can be added up. */
export function coreSeconds(cores: Record<string, number>, seconds: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cores).map(([name, value]) => [name, value * seconds]));
}

/** The measurement made of `parts` (and the warm-up's errors): rates over their summed time, percentiles over all their latencies. */
export function combine(parts: readonly Part[], warm?: RunCounts): LoadResult {
  const seconds = parts.reduce((sum, part) => sum + part.seconds, 0);
  const latencies = parts.flatMap((part) => part.latencies).sort((a, b) => a - b);
  const runs = [...(warm ? [warm] : []), ...parts.map((part) => part.counts)];
  const statuses: Record<string, number> = {};
  for (const run of runs) {
    for (const [status, count] of Object.entries(run.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
  }
  const sum = (field: 'socketErrors' | 'timeouts' | 'unexpectedBodies') => runs.reduce((total, run) => total + run[field], 0);
  const non2xx = Object.values(statuses).reduce((total, count) => total + count, 0);
  const cpuTotals: Record<string, number> = {};
  for (const part of parts) {
    for (const [name, value] of Object.entries(part.cpuSeconds)) cpuTotals[name] = (cpuTotals[name] ?? 0) + value;
  }
  const cpu = Object.fromEntries(Object.entries(cpuTotals).map(([name, value]) => [name, round(value / seconds, 2)]));
  const ok = parts.reduce((total, part) => total + part.counts.ok, 0);
  return {
    requests: parts.reduce((total, part) => total + part.counts.total, 0),
    seconds,
    rps: ok / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    errors: non2xx + sum('unexpectedBodies') + sum('socketErrors') + sum('timeouts'),
    errorDetail: {
      statuses,
      unexpectedBodies: sum('unexpectedBodies'),
      socketErrors: sum('socketErrors'),
      timeouts: sum('timeouts'),
      samples: runs.flatMap((run) => run.samples).slice(0, 5),
    },
    cpu,
    windows: parts.map((part) => part.window),
    rounds: parts.length,
  };
}
