/**
 * Opt-in phase timing for the benchmark (TABBY_CNI_TIMING=1): at exit one JSON line on stderr (never
 * stdout) with milliseconds since the process started: `boot` (Node's own bootstrap), `load` (our
 * modules up to the entry), then the time spent in each timed phase, and `total`.
 */
const on = process.env.TABBY_CNI_TIMING === '1';
const spent: Record<string, number> = {};

export function timed<A extends unknown[], R>(phase: string, fn: (...a: A) => Promise<R>): (...a: A) => Promise<R> {
  if (!on) return fn;
  return async (...a: A) => {
    const t0 = performance.now();
    try {
      return await fn(...a);
    } finally {
      spent[phase] = (spent[phase] ?? 0) + performance.now() - t0;
    }
  };
}

/** Call first thing in the entry module. */
export function startTiming(): void {
  if (!on) return;
  const entry = performance.now();
  const boot = performance.nodeTiming.bootstrapComplete;
  process.on('exit', () => {
    const round = (n: number) => Math.round(n * 10) / 10;
    const phases = Object.fromEntries(Object.entries(spent).map(([k, v]) => [k, round(v)]));
    process.stderr.write(JSON.stringify({ tabbyTiming: { boot: round(boot), load: round(entry - boot), ...phases, total: round(performance.now()) } }) + '\n');
  });
}
