/**
 * How many threads libuv's pool gets when UV_THREADPOOL_SIZE is not set (see start.cts):
 * the cores this process may use, at least 2 (so that a slow argon2 cannot hold up the odd
 * file or DNS job alone), at most libuv's 1024. With WORKERS above 1, each worker takes its
 * share of the cores, so that the workers together have about one pool thread per core
 * instead of cores × workers. `workers` is the raw WORKERS value; one that config will
 * refuse counts as 1.
 */
function threadPoolSize(cores: number, workers: string | undefined): number {
  const text = (workers ?? '1').trim();
  const count = text === 'auto' ? cores : /^\d+$/.test(text) ? Number(text) : 1;
  const share = count > 1 ? Math.ceil(cores / count) : cores;
  return Math.min(Math.max(2, share), 1024);
}

export = { threadPoolSize };
