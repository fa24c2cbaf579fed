import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * Raw sockets to the proxy, recording every byte the caller received (clients tidy bytes: a raw
 * socket shows exactly what came back, including error bodies and headers a client would hide).
 */
export interface Head {
  status: number;
  head: string;
  rest: Buffer;
}

export class Wire {
  readonly received: Buffer[] = [];
  readonly #port: number;
  readonly #open = new Set<Socket>();

  constructor(port: number) {
    this.#port = port;
  }

  text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }

  open(opts: { localAddress?: string; port?: number } = {}): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port: opts.port ?? this.#port, ...opts }, () => resolve(s));
      this.#open.add(s);
      s.once('close', () => this.#open.delete(s));
      s.once('error', reject);
    });
  }

  /** Reads one response head (recording it); the socket stays usable (e.g. for TLS after CONNECT). */
  head(socket: Socket | TLSSocket): Promise<Head> {
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (c: Buffer): void => {
        this.received.push(Buffer.from(c));
        buf = Buffer.concat([buf, c]);
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        socket.off('data', onData);
        socket.pause();
        const head = buf.subarray(0, i).toString('latin1');
        resolve({
          status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
          head,
          rest: buf.subarray(i + 4),
        });
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('close', () =>
        reject(new Error(`closed before a response head: ${buf.toString('latin1')}`)),
      );
    });
  }

  /** Sockets that `all` gave up on (the peer had not closed within its `ms`). */
  readonly #gaveUp = new WeakSet<Socket | TLSSocket>();

  /** Whether the peer closed this socket, rather than `all` giving up waiting for it. */
  closedByPeer(socket: Socket | TLSSocket): boolean {
    return !this.#gaveUp.has(socket);
  }

  /** Everything until the peer closes (or `ms` pass), recorded. */
  all(socket: Socket | TLSSocket, ms = 5000): Promise<string> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const done = (): void => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('latin1'));
      };
      const timer = setTimeout(() => {
        this.#gaveUp.add(socket);
        socket.destroy();
        done();
      }, ms);
      socket.on('data', (c: Buffer) => {
        this.received.push(Buffer.from(c));
        chunks.push(c);
      });
      socket.on('error', done);
      socket.on('close', done);
      socket.resume();
    });
  }

  /** One raw request on a fresh connection (\n becomes \r\n); everything the proxy answered. */
  async http(text: string, ms?: number): Promise<string> {
    const s = await this.open();
    const all = this.all(s, ms);
    s.write(crlf(text));
    return all;
  }

  async connect(
    authority: string,
    headers: string[] = [],
    line?: string,
  ): Promise<Head & { socket: Socket }> {
    const socket = await this.open();
    socket.write(
      `${line ?? `CONNECT ${authority} HTTP/1.1`}\r\nHost: ${authority}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`,
    );
    return { socket, ...(await this.head(socket)) };
  }

  tls(socket: Socket, ca: string, servername?: string): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const t = tlsConnect(
        { socket, ca, ALPNProtocols: ['http/1.1'], ...(servername !== undefined ? { servername } : {}) },
        () => resolve(t),
      );
      t.once('error', reject);
    });
  }

  /** CONNECT + TLS (trusting `ca`) + one raw request; everything the client got back after the 200. */
  async exchange(
    authority: string,
    request: string,
    o: { auth: string; ca: string; servername?: string; ms?: number },
  ): Promise<string> {
    const c = await this.connect(authority, [`Proxy-Authorization: ${o.auth}`]);
    if (c.status !== 200) {
      c.socket.destroy();
      throw new Error(`CONNECT ${authority} answered ${c.status}`);
    }
    const host = authority.replace(/:\d+$/, '');
    const t = await this.tls(c.socket, o.ca, o.servername ?? host);
    const all = this.all(t, o.ms);
    t.write(crlf(request));
    return all;
  }

  close(): void {
    for (const s of this.#open) s.destroy();
  }
}

export function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

export function statusOf(response: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
}

/** The JSON error body of a proxy answer, without the per-request id (to compare two refusals). */
export function errorOf(response: string): { status: number; code: string | undefined; body: string } {
  const i = response.indexOf('\r\n\r\n');
  const head = response.slice(0, i);
  return {
    status: statusOf(response),
    code: /x-authsome-error: (\S+)/i.exec(head)?.[1],
    body: response.slice(i + 4),
  };
}

/** The body of a raw HTTP/1.1 response, de-chunked when it was sent chunked. */
export function bodyOf(response: string): string {
  const i = response.indexOf('\r\n\r\n');
  const head = response.slice(0, i);
  let rest = response.slice(i + 4);
  if (!/transfer-encoding: chunked/i.test(head)) return rest;
  let out = '';
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}
