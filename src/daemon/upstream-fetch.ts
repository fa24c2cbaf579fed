import { Agent, fetch } from 'undici';
import type { FetchLike } from '../providers/oauth.js';
import { AddressPolicy } from '../proxy/address-policy.js';
import { dial, upstreamTrust } from '../proxy/dial.js';
import { parseAuthority } from '../proxy/destination.js';
import type { Settings } from '../config/settings.js';

/**
 * fetch for the daemon's own calls to providers (OAuth token, refresh, revoke). It goes the same
 * way as proxied traffic: operator pins, the private-address policy, TLS verified against the
 * system roots plus the operator CA only, the checked address dialled.
 */
export function upstreamFetch(
  settings: Settings,
  selfAddresses: () => ReadonlyArray<{ host: string; port: number }>,
): FetchLike {
  const policy = new AddressPolicy({ resolve: settings.resolve, selfAddresses });
  const trust = upstreamTrust(settings.upstreamCaPem);
  const agent = new Agent({
    connect: (opts, cb) => {
      const secure = opts.protocol === 'https:';
      Promise.resolve()
        .then(() =>
          parseAuthority(opts.port ? `${opts.hostname}:${opts.port}` : opts.hostname, secure ? 443 : 80),
        )
        .then(async (authority) => {
          const addr = await policy.resolve(authority);
          return dial(addr, {
            timeoutMs: settings.proxy.upstreamConnectTimeoutMs,
            ...(secure ? { tls: { servername: authority.host, context: trust } } : {}),
          });
        })
        .then((socket) => cb(null, socket))
        .catch((e: Error) => cb(e, null));
    },
  });
  return (url, init) => fetch(url, { ...init, dispatcher: agent });
}
