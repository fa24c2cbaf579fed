import pg from 'pg';
import { FeedHub, type ChangeFeed, type ChangeListener, type StatusListener } from './change-feed.js';

/**
 * The PostgreSQL change feed: one dedicated connection that LISTENs on the schema's channel (the
 * authsome_kv triggers NOTIFY it after every commit, pg-schema.ts). If that connection drops, or stops
 * answering the periodic ping, the feed is down (`up` false: callers read through) until a reconnect
 * with exponential backoff has LISTENed again; coming back up tells every subscriber "anything may have
 * changed", since notifications sent in between are lost.
 */

export interface PgFeedOptions {
  readonly config: pg.ClientConfig;
  /** Channel name: authsome_kv:<schema>. */
  readonly channel: string;
  /** How often the listening connection is pinged; a ping that fails or times out means down. */
  readonly pingMs?: number;
  readonly pingTimeoutMs?: number;
  /** First reconnect delay, doubled per failed attempt up to maxBackoffMs (with jitter). */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class PgChangeFeed implements ChangeFeed {
  readonly #hub = new FeedHub(false);
  readonly #opts: Required<Omit<PgFeedOptions, 'config' | 'channel'>>;
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  #client: pg.Client | undefined;
  #attempt = 0;
  #retry: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #pinging = false;
  #closed = false;

  constructor(opts: PgFeedOptions) {
    if (!/^authsome_kv:[a-z0-9_]+$/.test(opts.channel)) throw new TypeError('invalid channel name');
    this.#config = opts.config;
    this.#channel = opts.channel;
    this.#opts = {
      pingMs: opts.pingMs ?? 1000,
      pingTimeoutMs: opts.pingTimeoutMs ?? 2000,
      initialBackoffMs: opts.initialBackoffMs ?? 100,
      maxBackoffMs: opts.maxBackoffMs ?? 5000,
    };
  }

  get up(): boolean {
    return this.#hub.up;
  }

  subscribe(prefix: string, listener: ChangeListener): () => void {
    return this.#hub.subscribe(prefix, listener);
  }

  onStatus(listener: StatusListener): () => void {
    return this.#hub.onStatus(listener);
  }

  /** This node's own durable writes, delivered at once rather than when their notification returns. */
  local(keys: readonly string[]): void {
    this.#hub.emit(keys);
  }

  /** Makes the first attempt; if it fails the feed stays down and keeps retrying in the background. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    this.#retry = undefined;
    if (this.#closed) return;
    const client = new pg.Client(this.#config);
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    client.on('notification', (n) => {
      if (client === this.#client && n.channel === this.#channel) this.#deliver(n.payload);
    });
    this.#client = client;
    try {
      await client.connect();
      // The channel is a quoted identifier; the constructor allowed only [a-z0-9_:] in it.
      await client.query(`LISTEN "${this.#channel}"`);
    } catch {
      this.#lost(client);
      return;
    }
    if (client !== this.#client || this.#closed) return; // lost or closed while connecting
    this.#attempt = 0;
    this.#ping = setInterval(() => void this.#pingOnce(client), this.#opts.pingMs);
    this.#ping.unref();
    this.#hub.setUp(true);
  }

  async #pingOnce(client: pg.Client): Promise<void> {
    if (this.#pinging || client !== this.#client) return;
    this.#pinging = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('ping timed out')), this.#opts.pingTimeoutMs);
    });
    try {
      await Promise.race([client.query('SELECT 1'), timeout]);
    } catch {
      this.#lost(client);
    } finally {
      clearTimeout(timer);
      this.#pinging = false;
    }
  }

  #deliver(payload: string | undefined): void {
    let keys: unknown;
    try {
      keys = payload === '*' || payload === undefined ? '*' : JSON.parse(payload);
    } catch {
      keys = '*';
    }
    if (Array.isArray(keys) && keys.every((k): k is string => typeof k === 'string')) this.#hub.emit(keys);
    else this.#hub.emit('all'); // '*', or anything we do not understand: assume the worst
  }

  #lost(client: pg.Client): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    clearInterval(this.#ping);
    this.#ping = undefined;
    hardClose(client);
    this.#hub.setUp(false);
    if (this.#closed) return;
    const base = Math.min(this.#opts.maxBackoffMs, this.#opts.initialBackoffMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    this.#retry = setTimeout(() => void this.#connect(), base / 2 + Math.random() * (base / 2));
    this.#retry.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    const client = this.#client;
    if (client !== undefined) this.#lost(client);
    await this.#hub.close();
  }
}

/** end() waits for the server's goodbye, which never comes over a dead link: also drop the socket. */
function hardClose(client: pg.Client): void {
  client.end().catch(() => undefined);
  const stream = (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection
    ?.stream;
  stream?.destroy?.();
}
