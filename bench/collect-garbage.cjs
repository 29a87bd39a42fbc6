/**
 * Loaded with `--expose-gc --require` into every server the bench measures (the
 * authorities, both peers, the ceilings): on SIGUSR2 the process runs two full garbage
 * collections. bench/run.ts sends it before each comparison's warm-up, so that every side
 * starts a workload from a collected heap whatever workloads came before it.
 *
 * Why: the authority and node-oidc-provider both refreshed 20 to 40% slower right after the
 * client_credentials workloads than in a run of refresh alone (0.87 against 0.60 to 0.66 ms
 * of CPU per refresh for ours), and one forced full collection at the start of the refresh
 * workload brought ours back to 0.66 ms (bench runs of 2026-12-05). Without it, a row
 * measured how long the process takes to collect what the rows before it left, not the
 * workload.
 */
'use strict';
const collect = globalThis.gc;
if (typeof collect === 'function') {
  process.on('SIGUSR2', () => {
    collect();
    collect();
  });
}
