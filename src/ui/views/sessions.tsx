import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type Session } from '../api.js';
import { Empty, ErrorNote, Section, Time } from '../components.js';
import { ago, until } from '../format.js';
import { throttle, useLive } from '../live.js';

/** The profile's proxy session tokens (metadata: the token itself was never stored), with revoke. */
export function Sessions({ profile }: { profile: string }) {
  const [list, setList] = useState<Session[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState<string | undefined>();
  const load = useMemo(
    () => () =>
      api.sessions().then(
        (r) => {
          setList(r.sessions);
          setError(undefined);
        },
        (e: unknown) => setError(e),
      ),
    [],
  );
  useEffect(() => void load(), [load]);
  const refresh = useMemo(() => throttle(() => void load(), 1000), [load]);
  useLive((ev) => {
    if (ev.type === 'sessions') refresh();
    if (
      ev.type === 'audit' &&
      ev.records.some((r) => r.profile === profile && r.event.startsWith('session.'))
    )
      refresh();
  });

  const revoke = async (s: Session) => {
    setBusy(s.id);
    try {
      await api.revoke(s.id);
      setNote(`Session ${s.id} revoked: its next request through the proxy gets 407.`);
      setError(undefined);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
    }
  };

  const allow = (s: Session) =>
    s.allow === null
      ? 'every connection'
      : s.allow.map((a) => (a.connection ? `${a.provider}:${a.connection}` : a.provider)).join(', ');

  return (
    <Section title={`Proxy sessions of ${profile}`} id="sessions">
      <p class="status-note" role="status" aria-live="polite">
        {note}
      </p>
      <ErrorNote error={error} />
      {list && list.length === 0 && (
        <Empty
          text="No active sessions. Start one"
          cmd={`authsome run${profile === 'default' ? '' : ` --profile ${profile}`} -- <command>`}
        />
      )}
      {list && list.length > 0 && (
        <table class="records">
          <caption class="sr-only">Active session tokens</caption>
          <thead>
            <tr>
              <th scope="col">id</th>
              <th scope="col">label</th>
              <th scope="col">may use</th>
              <th scope="col">created</th>
              <th scope="col">expires</th>
              <th scope="col">
                <span class="sr-only">action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.id} data-session={s.id}>
                <td data-label="id" class="mono">
                  {s.id}
                </td>
                <td data-label="label">{s.label ?? <span class="muted">—</span>}</td>
                <td data-label="may use">{allow(s)}</td>
                <td data-label="created">
                  <Time iso={s.createdAt} text={ago(s.createdAt)} />
                </td>
                <td data-label="expires">
                  <Time iso={s.expiresAt} text={until(s.expiresAt)} />
                </td>
                <td data-label="action">
                  <button
                    type="button"
                    class="danger"
                    disabled={busy === s.id}
                    aria-label={`Revoke session ${s.id}`}
                    onClick={() => void revoke(s)}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
