import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Every file authsome uses, under one home (SPEC section 3). */
export interface HomePaths {
  readonly home: string;
  readonly auditLog: string;
  readonly clientDir: string;
  readonly clientConfig: string;
  readonly identitiesDir: string;
  readonly serverDir: string;
  readonly serverConfig: string;
  readonly masterKey: string;
  readonly kvStore: string;
  readonly caDir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly caBundle: string;
  readonly daemonJson: string;
  /** A copy of the audit anchor for the CLI (`audit verify`, `doctor`), which never opens the store. */
  readonly auditAnchor: string;
  readonly daemonLog: string;
  /** Team mode: this node's name, fixed at init (server/node.json). */
  readonly nodeFile: string;
  /** Team mode CLI: system roots plus the CA of a remote daemon (--daemon https://…). */
  readonly remoteCaBundle: string;
  identityKey(handle: string): string;
}

export function resolveHome(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env['AUTHSOME_HOME'] ?? join(homedir(), '.authsome');
  return resolve(chosen);
}

export function homePaths(home: string): HomePaths {
  const serverDir = join(home, 'server');
  const clientDir = join(home, 'client');
  const identitiesDir = join(clientDir, 'identities');
  const caDir = join(serverDir, 'ca');
  return {
    home,
    auditLog: join(home, 'audit.log'),
    clientDir,
    clientConfig: join(clientDir, 'config.json'),
    identitiesDir,
    serverDir,
    serverConfig: join(serverDir, 'config.json'),
    masterKey: join(serverDir, 'master.key'),
    kvStore: join(serverDir, 'kv_store'),
    caDir,
    caCert: join(caDir, 'ca.pem'),
    caKey: join(caDir, 'ca.key'),
    caBundle: join(caDir, 'bundle.pem'),
    daemonJson: join(serverDir, 'daemon.json'),
    auditAnchor: join(serverDir, 'audit-anchor.json'),
    daemonLog: join(serverDir, 'daemon.log'),
    nodeFile: join(serverDir, 'node.json'),
    remoteCaBundle: join(clientDir, 'remote-ca-bundle.pem'),
    identityKey: (handle: string) => join(identitiesDir, `${handle}.key`),
  };
}
