import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type AuditRecord, type Facets, type Me, type TimelineFilter, type Verify } from '../api.js';
import { Empty, ErrorNote, Section, Time } from '../components.js';
import { clock, day } from '../format.js';
import { throttle, useLive } from '../live.js';
import { RequestChart } from './chart.js';

const PAGE = 100;
const KEEP = 1000;
const FIELDS = ['profile', 'provider', 'connection', 'event', 'node'] as const;

function matches(r: AuditRecord, f: TimelineFilter): boolean {
  return FIELDS.every((k) => f[k] === undefined || f[k] === '' || r[k] === f[k]);
}

function family(event: string): string {
  const head = event.split('.')[0] ?? '';
  if (event === 'proxy.inject') return 'ok';
  if (
    event === 'proxy.deny' ||
    event === 'policy.deny' ||
    event === 'policy.rejected' ||
    event === 'proxy.error'
  )
    return 'bad';
  if (head === 'policy') return 'warn';
  return 'info';
}

function request(r: AuditRecord): string {
  return [r.method, r.host, r.path].filter(Boolean).join(' ');
}

/** Small non-secret extras of the record (a session id, a ttl, who set a policy). */
function details(r: AuditRecord): string {
  return Object.entries(r.detail ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

const orNull = (s: string) => (s === '' ? null : s);

function outcome(r: AuditRecord): string {
  const base = r.reason ?? (r.status !== undefined ? String(r.status) : '');
  return r.count !== undefined && r.count > 1 ? `${base} ×${r.count}` : base;
}

function VerifyBadge() {
  const [v, setV] = useState<Verify | undefined>();
  const [error, setError] = useState<unknown>();
  const load = useMemo(
    () => () =>
      api.verify().then(
        (x) => {
          setV(x);
          setError(undefined);
        },
        (e: unknown) => setError(e),
      ),
    [],
  );
  useEffect(() => void load(), [load]);
  const refresh = useMemo(() => throttle(() => void load(), 5000), [load]);
  useLive((ev) => ev.type === 'audit' && refresh());
  if (error !== undefined)
    return (
      <span class="badge bad" role="status">
        audit verify failed to run
      </span>
    );
  if (!v) return <span class="badge">verifying…</span>;
  return v.ok ? (
    <span
      class="badge ok"
      role="status"
      title="authsome audit verify: every line chains to the one before, and the log holds the daemon's last record"
    >
      ✓ chain intact · {v.lines} lines
    </span>
  ) : (
    <span class="badge bad" role="status">
      ✗ audit log broken at line {v.firstBroken?.line}: {v.firstBroken?.reason}
    </span>
  );
}

export function Timeline({ me }: { me: Me }) {
  const [filter, setFilter] = useState<TimelineFilter>({});
  const [records, setRecords] = useState<AuditRecord[]>([]);
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>();
  const [facets, setFacets] = useState<Facets | undefined>();

  const loadFacets = useMemo(() => () => api.facets().then(setFacets, () => undefined), []);
  const refreshFacets = useMemo(() => throttle(() => void loadFacets(), 10_000), [loadFacets]);
  useEffect(() => void loadFacets(), [loadFacets]);

  const load = (f: TimelineFilter) => {
    setLoading(true);
    api.audit(f, PAGE).then(
      (r) => {
        setRecords(r.records.slice().reverse());
        setMore(r.records.length === PAGE);
        setFresh(new Set());
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        setError(e);
        setLoading(false);
      },
    );
  };
  useEffect(() => load(filter), [filter]);

  useLive((ev) => {
    if (ev.type === 'reload') load(filter);
    if (ev.type !== 'audit') return;
    refreshFacets();
    const add = ev.records.filter((r) => matches(r, filter));
    if (add.length === 0) return;
    setRecords((old) => {
      const seen = new Set(old.map((r) => r.seq));
      return [...add.filter((r) => !seen.has(r.seq)).reverse(), ...old].slice(0, KEEP);
    });
    setFresh(new Set(add.map((r) => r.seq)));
  });

  const older = () => {
    const last = records[records.length - 1];
    if (!last) return;
    api.audit(filter, PAGE, last.seq).then(
      (r) => {
        setRecords((old) => [...old, ...r.records.slice().reverse()]);
        setMore(r.records.length === PAGE);
      },
      (e: unknown) => setError(e),
    );
  };

  const options = (k: (typeof FIELDS)[number]): string[] => {
    if (!facets) return [];
    if (k === 'profile') return me.owner ? facets.profiles : [me.profile];
    if (k === 'event') return facets.allEvents;
    return facets[`${k}s` as 'providers' | 'connections' | 'nodes'];
  };
  const filtered = FIELDS.some((k) => filter[k]);

  return (
    <Section title="Audit timeline" id="timeline" actions={<VerifyBadge />}>
      <RequestChart />
      <form class="filters" aria-label="Filter the timeline" onSubmit={(e) => e.preventDefault()}>
        {FIELDS.filter((k) => k !== 'node' || (facets?.nodes.length ?? 0) > 0).map((k) => (
          <label key={k}>
            {k}
            <select
              name={k}
              value={filter[k] ?? ''}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                setFilter((f) => ({ ...f, [k]: v === '' ? undefined : v }));
              }}
            >
              <option value="">all</option>
              {options(k).map((o) => (
                <option value={o} key={o}>
                  {o}
                </option>
              ))}
            </select>
          </label>
        ))}
        {filtered && (
          <button type="button" class="link" onClick={() => setFilter({})}>
            clear filters
          </button>
        )}
      </form>
      <ErrorNote error={error} />
      {!loading &&
        records.length === 0 &&
        !error &&
        (filtered ? (
          <Empty text="No events match these filters" />
        ) : (
          <Empty
            text="No events yet. Send a request through the proxy"
            cmd="authsome run -- curl https://api.github.com/user"
          />
        ))}
      {records.length > 0 && (
        <table class="records timeline">
          <caption class="sr-only">Audit events, newest first; new ones appear as they happen</caption>
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">event</th>
              <th scope="col">profile</th>
              <th scope="col">provider / connection</th>
              <th scope="col">request</th>
              <th scope="col">status</th>
            </tr>
          </thead>
          <tbody>
            {records.map((r) => (
              <tr
                key={r.seq}
                data-seq={r.seq}
                data-event={r.event}
                class={fresh.has(r.seq) ? 'fresh' : undefined}
              >
                <td data-label="time">
                  <Time iso={r.ts} text={`${clock(r.ts)}`} />
                  <span class="muted small"> {day(r.ts)}</span>
                </td>
                <td data-label="event">
                  <span class={`tag ${family(r.event)}`}>{r.event}</span>
                </td>
                <td data-label="profile">{r.profile}</td>
                <td data-label="provider">
                  {orNull([r.provider, r.connection].filter(Boolean).join(' / '))}
                </td>
                <td data-label="request" class="mono wrap">
                  {orNull(request(r))}
                  {r.exe ? <span class="muted small"> ({r.exe})</span> : null}
                  {r.node ? <span class="muted small"> @{r.node}</span> : null}
                  {r.detail ? <span class="muted small"> {details(r)}</span> : null}
                </td>
                <td data-label="status">{orNull(outcome(r))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {more && (
        <button type="button" onClick={older}>
          Older events
        </button>
      )}
    </Section>
  );
}
