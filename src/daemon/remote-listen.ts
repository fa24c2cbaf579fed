import type { AddressInfo } from 'node:net';
import type { Server as TlsServer, SecureContextOptions } from 'node:tls';
import type { ListenSettings } from '../config/settings.js';
import { mintServerCert, SERVER_CERT_VALIDITY_MS } from '../ca/server-cert.js';
import type { App } from '../app.js';
import { createControlServer, type ControlOptions } from './control.js';

/**
 * Remote callers (SPEC section 10, `--listen ADDR`): the proxy and the control API served again on ADDR,
 * over TLS with a certificate from the local CA naming ADDR, so a session token or a PoP-signed request
 * never crosses a network in clear. The loopback listeners stay as they are.
 */
export interface RemoteListeners {
  readonly host: string;
  readonly controlPort: number;
  readonly proxyPort: number;
  /** The control server (drained with the loopback one). */
  readonly control: import('node:http').Server;
  close(): void;
}

/** A new certificate this long before the current one ends (it lives SERVER_CERT_VALIDITY_MS). */
const RENEW_EVERY_MS = SERVER_CERT_VALIDITY_MS / 3;

export async function listenRemote(
  app: App,
  listen: ListenSettings,
  control: Omit<ControlOptions, 'remote'>,
): Promise<RemoteListeners> {
  const tls = async (): Promise<SecureContextOptions> => {
    const { certPem, keyPem } = await mintServerCert(app.ca.current, listen.host);
    return { cert: certPem, key: keyPem };
  };
  const first = await tls();
  const ctl = createControlServer({ ...control, remote: { host: listen.host, tls: first } });
  let c: AddressInfo;
  try {
    c = await ctl.listen(listen.controlPort, listen.host);
  } catch (e) {
    ctl.server.close();
    throw e;
  }
  app.addSelfAddress(c);
  let proxy: { address: AddressInfo; server: TlsServer };
  try {
    proxy = await app.proxy.listenTls(listen.proxyPort, listen.host, first);
  } catch (e) {
    ctl.server.close();
    throw e;
  }
  app.addSelfAddress(proxy.address);
  const renew = setInterval(() => {
    void tls().then(
      (opts) => {
        (ctl.server as unknown as TlsServer).setSecureContext(opts);
        proxy.server.setSecureContext(opts);
      },
      () => undefined, // the current certificate is still valid for a while; retried next time
    );
  }, RENEW_EVERY_MS);
  renew.unref();
  return {
    host: listen.host,
    controlPort: c.port,
    proxyPort: proxy.address.port,
    control: ctl.server,
    close() {
      clearInterval(renew);
      proxy.server.close();
    },
  };
}
