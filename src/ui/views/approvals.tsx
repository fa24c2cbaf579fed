import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type Held } from '../api.js';
import { Cmd, Empty, ErrorNote, Section, Time } from '../components.js';
import { ago } from '../format.js';
import { throttle, useLive } from '../live.js';

const FOR: Array<[string, string]> = [
  ['', 'this request only'],
  ['10m', 'and the same for 10 min'],
  ['1h', 'and the same for 1 h'],
  ['8h', 'and the same for 8 h'],
  ['24h', 'and the same for 24 h'],
];

/** Requests held by an `approve` rule, answered by the owner (approve, for a while, or reject). */
export function Approvals({ owner }: { owner: boolean }) {
  const [list, setList] = useState<Held[] | undefined>();
  const [timeoutS, setTimeoutS] = useState(120);
  const [error, setError] = useState<unknown>();
  const [note, setNote] = useState('');
  const [choice, setChoice] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<string | undefined>();
  const [now, setNow] = useState(Date.now());

  const load = useMemo(
    () => () =>
      api.approvals().then(
        (r) => {
          setList(r.approvals);
          setTimeoutS(r.timeoutS);
          setError(undefined);
        },
        (e: unknown) => setError(e),
      ),
    [],
  );
  useEffect(() => void load(), [load]);
  const refresh = useMemo(() => throttle(() => void load(), 300), [load]);
  useLive((ev) => {
    if (ev.type === 'approval') {
      refresh();
      if (ev.change === 'released' && ev.result)
        setNote(`${ev.held.method} ${ev.held.path} of ${ev.held.profile}: ${ev.result}.`);
    }
  });
  // The countdown to each request's timeout (a local clock; the list itself comes from live events).
  useEffect(() => {
    if (!list || list.length === 0) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [list]);

  const answer = async (h: Held, decision: 'approve' | 'reject') => {
    setBusy(h.id);
    try {
      const forText = choice[h.id] ?? '';
      if (decision === 'approve') await api.approve(h.id, forText || undefined);
      else await api.reject(h.id);
      setNote(
        `${decision === 'approve' ? 'Approved' : 'Rejected'} ${h.method} ${h.path} of ${h.profile}${decision === 'approve' && forText ? `, and the same for ${forText}` : ''}.`,
      );
      setError(undefined);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <Section title="Waiting for approval" id="approvals">
      <p class="status-note" role="status" aria-live="polite">
        {note}
      </p>
      <ErrorNote error={error} />
      {!owner && (
        <p class="muted">
          Only the owner profile answers held requests (<Cmd>authsome ui --profile &lt;owner&gt;</Cmd>). This
          profile sees its own.
        </p>
      )}
      {list && list.length === 0 && (
        <Empty
          text="Nothing is waiting. Requests that match an approve rule of a policy wait here; see"
          cmd="authsome policy show PROFILE"
        />
      )}
      {list && list.length > 0 && (
        <ul class="cards">
          {list.map((h) => {
            const left = Math.max(0, Math.round((Date.parse(h.since) + timeoutS * 1000 - now) / 1000));
            return (
              <li key={h.id} class="card" data-approval={h.id}>
                <div class="card-main">
                  <p class="mono wrap request-line">
                    <strong>{h.method}</strong> {h.path}
                  </p>
                  <p>
                    profile <strong>{h.profile}</strong> · {h.provider} / {h.connection}
                    {h.exe ? (
                      <>
                        {' '}
                        · <span class="mono">{h.exe}</span>
                      </>
                    ) : null}
                    {h.rule !== null ? <> · rule {h.rule}</> : null}
                  </p>
                  <p class="muted small">
                    held <Time iso={h.since} text={ago(h.since, now)} /> · id <span class="mono">{h.id}</span>{' '}
                    · times out in {left} s
                  </p>
                </div>
                {owner && (
                  <div class="card-actions">
                    <label>
                      <span class="sr-only">Approve for</span>
                      <select
                        aria-label={`How long to approve ${h.method} ${h.path}`}
                        value={choice[h.id] ?? ''}
                        onChange={(e) =>
                          setChoice((c) => ({ ...c, [h.id]: (e.target as HTMLSelectElement).value }))
                        }
                      >
                        {FOR.map(([v, t]) => (
                          <option value={v} key={v}>
                            {t}
                          </option>
                        ))}
                      </select>
                    </label>
                    <button
                      type="button"
                      class="primary"
                      disabled={busy === h.id}
                      onClick={() => void answer(h, 'approve')}
                    >
                      Approve
                    </button>
                    <button
                      type="button"
                      class="danger"
                      disabled={busy === h.id}
                      onClick={() => void answer(h, 'reject')}
                    >
                      Reject
                    </button>
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </Section>
  );
}
