import { AppError } from '../errors.js';
import { NAME_PATTERN } from '../names.js';
import { viaWildcard } from '../providers/host.js';
import type { ProviderDef } from '../providers/types.js';
import { rawValues } from './headers.js';
import type { CredentialSource, ResolvedCredential, SessionInfo } from './types.js';

export const CONNECTION_HEADER = 'x-authsome-connection';

/** X-Authsome-Connection from the raw headers: one copy at most, a valid name, never normalised. */
export function requestedConnection(rawHeaders: readonly string[]): string | undefined {
  const values = rawValues(rawHeaders, CONNECTION_HEADER);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new AppError('ERR_PROXY_BAD_REQUEST', 'X-Authsome-Connection may appear once');
  const v = values[0]!;
  if (!NAME_PATTERN.test(v))
    throw new AppError('ERR_PROXY_BAD_REQUEST', 'X-Authsome-Connection is not a valid connection name');
  return v;
}

function allowed(session: SessionInfo, provider: string, connection: string | undefined): boolean {
  if (session.allow === undefined) return true;
  return session.allow.some(
    (e) =>
      e.provider === provider &&
      (e.connection === undefined || connection === undefined || e.connection === connection),
  );
}

/**
 * The same words whether the connection is missing, another profile's, or outside --allow; they name
 * the connections of this provider this session may use (its own profile's only, within --allow).
 */
async function denied(
  credentials: CredentialSource,
  session: SessionInfo,
  provider: string,
  connection: string | undefined,
): Promise<AppError> {
  const what =
    connection === undefined
      ? `the default connection of ${provider}`
      : `connection "${connection}" of ${provider}`;
  const usable = ((await credentials.names?.(session.profile).catch(() => undefined)) ?? [])
    .filter((c) => c.provider === provider && allowed(session, provider, c.connection))
    .map((c) => c.connection);
  const may =
    usable.length > 0
      ? `; this session may use: ${usable.join(', ')} (send X-Authsome-Connection: <name>)`
      : `; this session may use no ${provider} connection`;
  return new AppError(
    'ERR_PROXY_CONNECTION_DENIED',
    `${what} is not available to this session${may}`,
    `check \`authsome connection list\` and the session's --allow`,
  );
}

/**
 * The credential for this request: the named connection or the profile's default, limited by the
 * session's allow list. undefined = no header and no connection of this provider in the profile:
 * the request goes on without a secret (anonymous git clones and npm installs keep working), while
 * a named connection that is missing, another profile's, or outside --allow is refused.
 */
export async function chooseConnection(
  credentials: CredentialSource,
  session: SessionInfo,
  provider: ProviderDef,
  requested: string | undefined,
): Promise<ResolvedCredential | undefined> {
  const refuse = async (): Promise<never> => {
    throw await denied(credentials, session, provider.name, requested);
  };
  if (requested !== undefined && !allowed(session, provider.name, requested)) return refuse();
  const cred = await credentials.resolve(session.profile, provider.name, requested);
  if (!cred) {
    if (requested === undefined) return undefined;
    return refuse();
  }
  if (requested !== undefined && cred.connection !== requested) return refuse();
  if (!allowed(session, provider.name, cred.connection)) return refuse();
  return cred;
}

/**
 * A host the provider covers only through a wildcard belongs to some tenant (a shop, a site): the
 * connection is injected there only if it is bound to that host (`login --host`), so an agent cannot
 * send it to a tenant of its own choosing. Exact hosts of the provider need no binding.
 */
export function checkTenantHost(provider: ProviderDef, cred: ResolvedCredential, host: string): void {
  if (!viaWildcard(provider, host) || cred.hosts?.includes(host)) return;
  throw new AppError(
    'ERR_PROXY_CONNECTION_DENIED',
    cred.hosts?.length
      ? `connection "${cred.connection}" of ${provider.name} is bound to ${cred.hosts.join(', ')}, not ${host}`
      : `connection "${cred.connection}" of ${provider.name} names no host of its own, and ${host} is one of many tenants' hosts: log in again with --host naming your own`,
    `authsome login ${provider.name} --connection ${cred.connection} --host <your host>`,
  );
}
