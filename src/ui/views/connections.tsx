import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type Connection } from '../api.js';
import { Empty, ErrorNote, Section, Time } from '../components.js';
import { ago, until } from '../format.js';
import { throttle, useLive } from '../live.js';

const TOUCHES = /^(connection\.|login$|logout$|token\.|proxy\.inject$)/;

/** The profile's connections: metadata only (the daemon never sends a field value). */
export function Connections({ profile }: { profile: string }) {
  const [list, setList] = useState<Connection[] | undefined>();
  const [error, setError] = useState<unknown>();
  const load = useMemo(
    () => () =>
      api.connections().then(
        (r) => {
          setList(r.connections);
          setError(undefined);
        },
        (e: unknown) => setError(e),
      ),
    [],
  );
  useEffect(() => void load(), [load]);
  const refresh = useMemo(() => throttle(() => void load(), 2000), [load]);
  useLive((ev) => {
    if (ev.type === 'audit' && ev.records.some((r) => r.profile === profile && TOUCHES.test(r.event)))
      refresh();
  });

  const byProvider = new Map<string, Connection[]>();
  for (const c of list ?? []) byProvider.set(c.provider, [...(byProvider.get(c.provider) ?? []), c]);

  return (
    <Section title={`Connections of ${profile}`} id="connections">
      <ErrorNote error={error} />
      {list && list.length === 0 && (
        <Empty
          text="No connections yet"
          cmd={`authsome login github${profile === 'default' ? '' : ` --profile ${profile}`}`}
        />
      )}
      {list && list.length > 0 && (
        <table class="records">
          <caption class="sr-only">Connections by provider; secrets are never shown</caption>
          <thead>
            <tr>
              <th scope="col">provider</th>
              <th scope="col">connection</th>
              <th scope="col">kind</th>
              <th scope="col">created</th>
              <th scope="col">last used</th>
              <th scope="col">OAuth expiry</th>
            </tr>
          </thead>
          <tbody>
            {[...byProvider.entries()].flatMap(([, conns]) =>
              conns.map((c) => (
                <tr key={`${c.provider}/${c.connection}`} data-connection={`${c.provider}/${c.connection}`}>
                  <td data-label="provider">{c.provider}</td>
                  <td data-label="connection">
                    {c.connection}
                    {c.isDefault && (
                      <span class="tag ok" title={`the default ${c.provider} connection`}>
                        default
                      </span>
                    )}
                  </td>
                  <td data-label="kind">
                    {c.flow}
                    <span class="muted small"> ({c.fields.join(', ')})</span>
                  </td>
                  <td data-label="created">
                    <Time iso={c.createdAt} text={ago(c.createdAt)} />
                  </td>
                  <td data-label="last used">
                    {c.lastUsed ? (
                      <Time iso={c.lastUsed} text={ago(c.lastUsed)} />
                    ) : (
                      <span class="muted">never</span>
                    )}
                  </td>
                  <td data-label="OAuth expiry">
                    {c.expiresAt ? (
                      <Time iso={c.expiresAt} text={until(c.expiresAt)} />
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      )}
    </Section>
  );
}
