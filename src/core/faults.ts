/**
 * Fault injection for the tests that prove a run survives being killed: `HAT_FAULT=NAME:N` makes the process
 * kill itself with SIGKILL (no clean-up of any kind, as `kill -9` would) right after the N-th time it passes
 * the point named NAME (e.g. `checkpoint:2`: just after the second checkpoint is written). `NAME:N:throw`
 * throws an unexpected (non-user) error there instead, as a bug would. Unset, it costs a string comparison.
 */
const hits = new Map<string, number>();

export function faultPoint(name: string): void {
  const spec = process.env.HAT_FAULT;
  if (!spec) return;
  const [point, count, action] = spec.split(':');
  if (point !== name) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n !== Number(count)) return;
  if (action === 'throw') throw new Error(`injected fault at ${name} #${n} (HAT_FAULT=${spec})`);
  process.kill(process.pid, 'SIGKILL');
}
