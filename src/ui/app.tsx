import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, type Me } from './api.js';
import { Cmd } from './components.js';
import { connectLive, disconnectLive, throttle, useLive, type LiveStatus } from './live.js';
import { Approvals } from './views/approvals.js';
import { Connections } from './views/connections.js';
import { Doctor } from './views/doctor.js';
import { Policies } from './views/policies.js';
import { Sessions } from './views/sessions.js';
import { Timeline } from './views/timeline.js';

const TABS = [
  ['timeline', 'Timeline'],
  ['connections', 'Connections'],
  ['sessions', 'Sessions'],
  ['approvals', 'Approvals'],
  ['policies', 'Policies'],
  ['checks', 'Checks'],
] as const;
type Tab = (typeof TABS)[number][0];

function tabFromHash(): Tab {
  const h = location.hash.slice(1);
  return (TABS.find(([t]) => t === h)?.[0] ?? 'timeline') as Tab;
}

/** Shown when there is no session: how to get one (the page never asks for a secret). */
export function LoggedOut({ message }: { message: string }) {
  return (
    <main id="main" class="logged-out">
      <h1>authsome</h1>
      <p role="alert">{message}</p>
      <p>
        Open a new link: <Cmd>authsome ui</Cmd> (or <Cmd>authsome ui --open</Cmd>) prints one that works once,
        within 60 s.
      </p>
    </main>
  );
}

export function App({ me }: { me: Me }) {
  const [tab, setTab] = useState<Tab>(tabFromHash());
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const [ended, setEnded] = useState<string | undefined>();
  const [held, setHeld] = useState(0);

  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    addEventListener('hashchange', onHash);
    connectLive();
    return () => {
      removeEventListener('hashchange', onHash);
      disconnectLive();
    };
  }, []);

  const countHeld = useMemo(
    () =>
      throttle(
        () =>
          void api.approvals().then(
            (r) => setHeld(r.approvals.length),
            () => undefined,
          ),
        300,
      ),
    [],
  );
  useEffect(countHeld, [countHeld]);
  useLive((ev) => {
    if (ev.type === 'status') {
      setStatus(ev.status);
      // A stream the daemon refused (it restarted, and this session with it went): say so.
      if (ev.status === 'offline')
        void api.me().catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 401)
            setEnded(
              (cur) => cur ?? 'This dashboard session has ended (the daemon restarted, or it expired).',
            );
        });
    }
    if (ev.type === 'approval') countHeld();
    if (ev.type === 'end')
      setEnded(
        ev.reason === 'logout'
          ? 'You logged out of the dashboard.'
          : ev.reason === 'shutdown'
            ? 'The daemon stopped, and its dashboard sessions with it.'
            : 'This dashboard session has ended (expired, or its profile was deleted).',
      );
  });

  const logout = async () => {
    await api.logout().catch(() => undefined);
    disconnectLive();
    setEnded('You logged out of the dashboard.');
  };

  if (ended !== undefined) return <LoggedOut message={ended} />;

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <h1>authsome</h1>
        <p class="who">
          profile <strong>{me.profile}</strong>
          {me.owner && <span class="tag ok">owner</span>}
          <span class="muted small">
            {' '}
            · node {me.node} · v{me.version}
          </span>
        </p>
        <p class={`live ${status}`} role="status" aria-live="polite">
          <span class="dot" aria-hidden="true" />
          {status === 'live' ? 'live' : status === 'connecting' ? 'connecting…' : 'offline'}
        </p>
        <button type="button" onClick={() => void logout()}>
          Log out
        </button>
      </header>
      <nav class="tabs" aria-label="Views">
        <ul>
          {TABS.map(([t, label]) => (
            <li key={t}>
              <a href={`#${t}`} aria-current={tab === t ? 'page' : undefined}>
                {label}
                {t === 'approvals' && held > 0 && (
                  <span class="count" aria-label={`${held} waiting`}>
                    {held}
                  </span>
                )}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {tab === 'timeline' && <Timeline me={me} />}
        {tab === 'connections' && <Connections profile={me.profile} />}
        {tab === 'sessions' && <Sessions profile={me.profile} />}
        {tab === 'approvals' && <Approvals owner={me.owner} />}
        {tab === 'policies' && <Policies profiles={me.profiles} />}
        {tab === 'checks' && <Doctor />}
      </main>
    </>
  );
}
