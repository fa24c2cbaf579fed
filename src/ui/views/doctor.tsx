import { useEffect, useState } from 'preact/hooks';
import { api, type DoctorCheck } from '../api.js';
import { Cmd, ErrorNote, Section } from '../components.js';

const MARK: Record<DoctorCheck['status'], string> = { pass: '✓', fail: '✗', warn: '!', skip: '–' };

/** doctor's checks that the daemon runs on itself; the rest need the CLI (`authsome doctor`). */
export function Doctor() {
  const [checks, setChecks] = useState<DoctorCheck[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const run = () => {
    setBusy(true);
    api.doctor().then(
      (r) => {
        setChecks(r.checks);
        setError(undefined);
        setBusy(false);
      },
      (e: unknown) => {
        setError(e);
        setBusy(false);
      },
    );
  };
  useEffect(run, []);
  return (
    <Section
      title="Checks"
      id="checks"
      actions={
        <button type="button" onClick={run} disabled={busy}>
          {busy ? 'Checking…' : 'Run again'}
        </button>
      }
    >
      <ErrorNote error={error} />
      {checks && (
        <ul class="checks">
          {checks.map((c) => (
            <li key={c.id} class={`check-item ${c.status}`} data-check={c.id}>
              <span class="mark" aria-hidden="true">
                {MARK[c.status]}
              </span>
              <div>
                <p>
                  <strong>{c.title}</strong> <span class="sr-only">{c.status}</span>
                </p>
                <p class="wrap">{c.detail}</p>
                {c.fix && c.status !== 'pass' && (
                  <p>
                    fix: <Cmd>{c.fix}</Cmd>
                  </p>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
      <p class="muted small">
        These are the checks the daemon can run on itself. The CLI's side (its key files, the clock between
        CLI and daemon, the proxy's 407 and TLS interception probes, curl/Node/Python/git through{' '}
        <code>run</code>, and an injection round trip in a scratch home) needs <Cmd>authsome doctor</Cmd>.
      </p>
    </Section>
  );
}
