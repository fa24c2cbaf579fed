import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type PolicyCheck, type PolicyEntry, type PolicyRule } from '../api.js';
import { Cmd, ErrorNote, Section } from '../components.js';
import { throttle, useLive } from '../live.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function Rules({ rules }: { rules: PolicyRule[] }) {
  return (
    <table class="records">
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">provider</th>
          <th scope="col">connection</th>
          <th scope="col">methods</th>
          <th scope="col">path</th>
          <th scope="col">exe</th>
          <th scope="col">action</th>
        </tr>
      </thead>
      <tbody>
        {rules.map((r, i) => (
          <tr key={i}>
            <td data-label="#">{i}</td>
            <td data-label="provider">{r.provider ?? '*'}</td>
            <td data-label="connection">{r.connection ?? '*'}</td>
            <td data-label="methods">{r.methods?.join(', ') ?? '*'}</td>
            <td data-label="path" class="mono wrap">
              {r.path ?? '*'}
            </td>
            <td data-label="exe" class="mono wrap">
              {r.exe?.join(', ') ?? '*'}
            </td>
            <td data-label="action">
              <span class={`tag ${r.action === 'allow' ? 'ok' : r.action === 'deny' ? 'bad' : 'warn'}`}>
                {r.action}
              </span>
              {r.rate ? <span class="muted small"> {r.rate}</span> : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function CheckForm({ profiles }: { profiles: string[] }) {
  const [profile, setProfile] = useState(profiles[0] ?? '');
  const [method, setMethod] = useState('GET');
  const [url, setUrl] = useState('https://api.github.com/user');
  const [connection, setConnection] = useState('');
  const [result, setResult] = useState<PolicyCheck | undefined>();
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      setResult(await api.check(profile, { method, url, ...(connection ? { connection } : {}) }));
      setError(undefined);
    } catch (err) {
      setResult(undefined);
      setError(err);
    }
  };
  return (
    <form class="check" onSubmit={(e) => void submit(e)} aria-labelledby="check-title">
      <h3 id="check-title">Check a request</h3>
      <p class="muted small">What the policy decides for one request, as the proxy would; nothing is sent.</p>
      <div class="row">
        <label>
          profile
          <select value={profile} onChange={(e) => setProfile((e.target as HTMLSelectElement).value)}>
            {profiles.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          method
          <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
            {METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          URL
          <input
            type="url"
            required
            value={url}
            onInput={(e) => setUrl((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          connection
          <input
            type="text"
            placeholder="default"
            value={connection}
            onInput={(e) => setConnection((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="primary">
          Check
        </button>
      </div>
      <ErrorNote error={error} />
      {result && (
        <p class="check-result" role="status">
          <span class={`tag ${result.action === 'allow' ? 'ok' : result.action === 'deny' ? 'bad' : 'warn'}`}>
            {result.applies ? result.action : 'no credential'}
          </span>{' '}
          {result.reason}
        </p>
      )}
    </form>
  );
}

/** Policies (read only: they are set with `authsome policy set`), and a check of one URL. */
export function Policies({ profiles }: { profiles: string[] }) {
  const [list, setList] = useState<PolicyEntry[] | undefined>();
  const [error, setError] = useState<unknown>();
  const load = useMemo(
    () => () =>
      api.policies().then(
        (r) => {
          setList(r.policies);
          setError(undefined);
        },
        (e: unknown) => setError(e),
      ),
    [],
  );
  useEffect(() => void load(), [load]);
  const refresh = useMemo(() => throttle(() => void load(), 1000), [load]);
  useLive(
    (ev) =>
      ev.type === 'audit' &&
      ev.records.some((r) => r.event === 'policy.set' || r.event === 'policy.clear') &&
      refresh(),
  );

  return (
    <Section title="Policies" id="policies">
      <ErrorNote error={error} />
      <CheckForm profiles={profiles} />
      {list?.map((p) => (
        <article key={p.profile} class="policy" aria-labelledby={`policy-${p.profile}`}>
          <h3 id={`policy-${p.profile}`}>{p.profile}</h3>
          {p.error ? (
            <p class="error">{p.error}</p>
          ) : p.policy === null ? (
            <p class="empty">
              No policy: every request this profile may inject is allowed. Set one:{' '}
              <Cmd>{`authsome policy set ${p.profile} FILE`}</Cmd>
            </p>
          ) : (
            <>
              <p>
                default{' '}
                <span
                  class={`tag ${p.policy.default === 'allow' ? 'ok' : p.policy.default === 'deny' ? 'bad' : 'warn'}`}
                >
                  {p.policy.default}
                </span>
                <span class="muted small">
                  {' '}
                  set {p.setAt} by {p.setBy}
                </span>
              </p>
              {p.policy.rules.length > 0 ? <Rules rules={p.policy.rules} /> : <p class="muted">no rules</p>}
            </>
          )}
        </article>
      ))}
    </Section>
  );
}
