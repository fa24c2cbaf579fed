import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type Chart } from '../api.js';
import { ErrorNote } from '../components.js';
import { throttle, useLive } from '../live.js';

const RANGES: Array<[number, string]> = [
  [15, '15 min'],
  [60, '1 h'],
  [360, '6 h'],
  [1440, '24 h'],
];
/** The plot's own units: bars fill it, stretched to the box (labels are HTML, so they never stretch). */
const W = 60;
const H = 100;
const COLORS = 8;

/** Requests injected per provider over time: stacked bars drawn as plain SVG (no library). */
export function RequestChart() {
  const [minutes, setMinutes] = useState(60);
  const [chart, setChart] = useState<Chart | undefined>();
  const [error, setError] = useState<unknown>();

  const load = useMemo(
    () => (m: number) =>
      api.chart(m).then(
        (c) => {
          setChart(c);
          setError(undefined);
        },
        (e: unknown) => setError(e),
      ),
    [],
  );
  useEffect(() => {
    void load(minutes);
  }, [minutes, load]);
  const current = useRef(minutes);
  current.current = minutes;
  const refresh = useMemo(() => throttle(() => void load(current.current), 2000), [load]);
  useLive((ev) => {
    if (ev.type === 'audit' && ev.records.some((r) => r.event === 'proxy.inject')) refresh();
  });

  const providers = chart ? Object.keys(chart.series).sort() : [];
  const totals = providers.map((p) => chart!.series[p]!.reduce((a, b) => a + b, 0));
  const sum = totals.reduce((a, b) => a + b, 0);
  let max = 1;
  if (chart)
    for (let i = 0; i < chart.buckets; i++) {
      let s = 0;
      for (const p of providers) s += chart.series[p]![i] ?? 0;
      max = Math.max(max, s);
    }
  const bw = chart ? W / chart.buckets : 1;
  const label = (t: number) =>
    new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });

  return (
    <figure class="chart" aria-labelledby="chart-title">
      <div class="chart-head">
        <h3 id="chart-title">Requests per provider</h3>
        <label>
          <span class="sr-only">Time range</span>
          <select value={minutes} onChange={(e) => setMinutes(Number((e.target as HTMLSelectElement).value))}>
            {RANGES.map(([m, t]) => (
              <option value={m} key={m}>
                last {t}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={error} />
      {chart && sum === 0 && (
        <p class="empty">
          No requests through the proxy in this range:{' '}
          <code class="cmd">authsome run -- curl https://api.github.com/user</code>
        </p>
      )}
      {chart && sum > 0 && (
        <>
          <div class="plot">
            <span class="y-max muted small" aria-hidden="true">
              {max}
            </span>
            <svg
              viewBox={`0 0 ${W} ${H}`}
              preserveAspectRatio="none"
              role="img"
              aria-label={`${sum} injected requests; ${providers.map((p, i) => `${p}: ${totals[i]}`).join(', ')}`}
            >
              {Array.from({ length: chart.buckets }, (_, i) => {
                let y = H;
                return providers.map((p, pi) => {
                  const n = chart.series[p]![i] ?? 0;
                  if (n === 0) return null;
                  const h = (n / max) * (H - 2);
                  y -= h;
                  return (
                    <rect
                      key={`${p}-${i}`}
                      class={`bar p${pi % COLORS}`}
                      x={i * bw + 0.1}
                      y={y}
                      width={Math.max(0.2, bw - 0.2)}
                      height={h}
                    >
                      <title>{`${p}: ${n} at ${label(chart.start + i * chart.bucketMs)}`}</title>
                    </rect>
                  );
                });
              })}
            </svg>
          </div>
          <p class="x-axis muted small" aria-hidden="true">
            <span>{label(chart.start)}</span>
            <span>now</span>
          </p>
          <ul class="legend">
            {providers.map((p, i) => (
              <li key={p}>
                <span class={`swatch p${i % COLORS}`} aria-hidden="true" />
                {p} <span class="muted">{totals[i]}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </figure>
  );
}
