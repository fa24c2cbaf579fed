import { readFile, writeFile, rename, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { AppError } from '../errors.js';
import { assertName } from '../names.js';
import { homePaths, resolveHome, type HomePaths } from '../config/paths.js';
import { readIdentityKey } from '../identity/index.js';
import { DaemonClient, type RemoteDaemon } from '../daemon/client.js';
import { readFileSync } from 'node:fs';
import { runningDaemon, startDaemon } from '../daemon/lifecycle.js';
import { makeOutput, type Output } from './output.js';

/** client/config.json: the active profile and which profile is the owner. */
export interface ClientConfig {
  activeProfile: string;
  owner: string;
}

export interface GlobalArgs {
  home?: string | undefined;
  profile?: string | undefined;
  json?: boolean | undefined;
  color?: boolean | undefined;
  daemon?: string | undefined;
  daemonCa?: string | undefined;
}

/**
 * --daemon https://node:7998 (or AUTHSOME_DAEMON): talk to a team node over the network instead of this
 * home's own daemon (SPEC section 10). Its certificate must chain to the CA named by --daemon-ca or
 * AUTHSOME_DAEMON_CA (default: this home's server/ca/ca.pem, on a node of the team).
 */
function remoteDaemon(args: GlobalArgs, paths: HomePaths, env: NodeJS.ProcessEnv): RemoteDaemon | undefined {
  const text = args.daemon ?? env['AUTHSOME_DAEMON'];
  if (text === undefined || text === '') return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AppError(
      'ERR_INPUT_INVALID',
      '--daemon is not a URL',
      'write it as https://node.example.com:7998',
    );
  }
  if (
    url.protocol !== 'https:' ||
    url.username !== '' ||
    url.password !== '' ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.hash !== ''
  )
    throw new AppError(
      'ERR_INPUT_INVALID',
      '--daemon must be https://host:port and nothing more (a remote node is only reached over TLS)',
      'write it as https://node.example.com:7998',
    );
  const caFile = args.daemonCa ?? (env['AUTHSOME_DAEMON_CA'] || paths.caCert);
  let caPem: string;
  try {
    caPem = readFileSync(caFile, 'utf8');
  } catch {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `cannot read the team CA certificate ${caFile}`,
      "pass the team's ca.pem (server/ca/ca.pem on any node) with --daemon-ca FILE or AUTHSOME_DAEMON_CA",
    );
  }
  if (!caPem.includes('-----BEGIN CERTIFICATE-----'))
    throw new AppError('ERR_INPUT_INVALID', `${caFile} holds no PEM certificate`, "pass the team's ca.pem");
  return { origin: url.origin, caPem, caFile };
}

/**
 * The session this process runs in, when it is a child of `authsome run` (or a shell that ran
 * `eval "$(authsome proxy env)"`): `run` sets AUTHSOME_PROFILE and AUTHSOME_SESSION_ID, and the token
 * sits in the proxy URL. Inside one, the CLI acts as that session's profile only (issue 18 item 6).
 */
export interface InSession {
  readonly profile: string;
  readonly id: string;
  /** The session token from HTTPS_PROXY, which a nested session is narrowed by (never printed). */
  readonly token: string | undefined;
}

export function sessionFromEnv(env: NodeJS.ProcessEnv): InSession | undefined {
  const id = env['AUTHSOME_SESSION_ID'];
  const profile = env['AUTHSOME_PROFILE'];
  if (!id || !profile) return undefined;
  let token: string | undefined;
  for (const v of [env['HTTPS_PROXY'], env['https_proxy'], env['HTTP_PROXY'], env['http_proxy']]) {
    if (!v) continue;
    try {
      const u = new URL(v);
      if (decodeURIComponent(u.username) === profile && u.password) {
        token = decodeURIComponent(u.password);
        break;
      }
    } catch {
      // not a URL: look at the next one
    }
  }
  return { profile: assertName('profile', profile), id, token };
}

export class Ctx {
  readonly paths: HomePaths;
  readonly out: Output;
  readonly profileFlag: string | undefined;
  /** A remote node (--daemon https://…), or undefined for this home's own daemon. */
  readonly remote: RemoteDaemon | undefined;
  readonly session: InSession | undefined;

  constructor(argv: object) {
    const args = argv as GlobalArgs;
    this.paths = homePaths(resolveHome(args.home));
    this.remote = remoteDaemon(args, this.paths, process.env);
    this.out = makeOutput(args.json === true, args.color === false);
    this.session = sessionFromEnv(process.env);
    const flag = args.profile === undefined ? undefined : assertName('profile', args.profile);
    if (this.session && flag !== undefined && flag !== this.session.profile)
      throw new AppError(
        'ERR_AUTH_FORBIDDEN',
        `this command runs inside an authsome session of profile "${this.session.profile}", so it acts as that profile only; --profile ${flag} is refused`,
        'run it outside the session (a shell without AUTHSOME_SESSION_ID)',
      );
    this.profileFlag = this.session?.profile ?? flag;
  }

  /** Commands that change the home or act for every profile are refused inside a session. */
  refuseInSession(what: string): void {
    if (!this.session) return;
    throw new AppError(
      'ERR_AUTH_FORBIDDEN',
      `${what} is refused inside an authsome session (this process runs under profile "${this.session.profile}", session ${this.session.id})`,
      'run it outside the session, in a shell without AUTHSOME_SESSION_ID (docs/security.md: the boundary is the OS user)',
    );
  }

  async readConfig(): Promise<ClientConfig> {
    let text: string;
    try {
      text = await readFile(this.paths.clientConfig, 'utf8');
    } catch {
      throw new AppError(
        'ERR_HOME_NOT_INITIALISED',
        `no authsome home at ${this.paths.home}`,
        'run `authsome init` (or pass --home / set AUTHSOME_HOME)',
      );
    }
    try {
      const c = JSON.parse(text) as Partial<ClientConfig>;
      return { activeProfile: assertName('profile', c.activeProfile), owner: assertName('profile', c.owner) };
    } catch {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `${this.paths.clientConfig} is damaged`,
        'restore it: {"activeProfile":"<name>","owner":"<owner>"}',
      );
    }
  }

  async writeConfig(c: ClientConfig): Promise<void> {
    await mkdir(this.paths.clientDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.paths.clientConfig}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.paths.clientConfig);
  }

  /** --profile for this one command, else the active profile. */
  async profile(): Promise<string> {
    return this.profileFlag ?? (await this.readConfig()).activeProfile;
  }

  /**
   * A PoP-signing client for `handle` (default: the acting profile), starting the daemon on demand;
   * with `start: false`, undefined when it is not running.
   */
  async client(handle?: string): Promise<DaemonClient>;
  async client(handle: string | undefined, opts: { start: false }): Promise<DaemonClient | undefined>;
  async client(handle?: string, opts: { start?: boolean } = {}): Promise<DaemonClient | undefined> {
    const who = handle ?? (await this.profile());
    const keyPath = this.paths.identityKey(who);
    if (!existsSync(keyPath)) {
      // The active profile and the owner were created here: their key is missing, not the profile.
      const config = await this.readConfig().catch(() => undefined);
      if (config && (who === config.activeProfile || who === config.owner)) {
        const other = who === config.owner ? undefined : config.owner;
        throw new AppError(
          'ERR_IDENTITY_KEY_MISSING',
          `the key of profile "${who}" is missing (${keyPath}): it cannot sign requests`,
          `restore that file from a backup${other ? `; or act as the owner (--profile ${other}): \`authsome profile delete ${who}\`, then create it again` : ''}`,
        );
      }
      throw new AppError(
        'ERR_PROFILE_NOT_FOUND',
        `no profile "${who}" on this machine (no key at ${keyPath})`,
        'run `authsome profile list`, or create it with `authsome profile create`',
      );
    }
    const key = await readIdentityKey(keyPath);
    if (this.remote) {
      const port = Number(new URL(this.remote.origin).port || 443);
      const info = {
        pid: 0,
        host: '',
        controlPort: port,
        proxyHost: '',
        proxyPort: 0,
        startedAt: '',
        version: '',
      };
      return new DaemonClient(info, who, key, this.remote);
    }
    const info = opts.start === false ? await runningDaemon(this.paths) : await startDaemon(this.paths);
    return info && new DaemonClient(info, who, key);
  }

  /**
   * Owner-only commands sign as the owner unless --profile names another (which the daemon then
   * refuses). Inside a session they are refused here: an agent under `run` never acts as the owner.
   */
  async ownerClient(): Promise<DaemonClient> {
    if (this.session)
      throw new AppError(
        'ERR_AUTH_NOT_OWNER',
        `owner-only commands are refused inside an authsome session (this process runs under profile "${this.session.profile}", session ${this.session.id})`,
        'run it outside the session, in a shell without AUTHSOME_SESSION_ID (docs/security.md: the boundary is the OS user)',
      );
    return this.client(this.profileFlag ?? (await this.readConfig()).owner);
  }
}
