import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket, type PeerCertificate } from 'node:tls';
import { request } from 'node:http';
import { X509Certificate } from 'node:crypto';

/** Raw probes of the daemon's two listeners. They send no credential and nothing goes upstream. */

export interface Head {
  status: number;
  headers: Record<string, string>;
}

const TIMEOUT_MS = 10_000;

/** Reads one HTTP response head (status line + headers) from a socket. */
function readHead(sock: Socket | TLSSocket): Promise<Head> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error('no answer within 10 s')), TIMEOUT_MS);
    const done = (err?: Error, head?: Head) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', onErr);
      sock.off('close', onClose);
      if (err) reject(err);
      else resolve(head!);
    };
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = buf.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      done(undefined, { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers });
    };
    const onErr = (e: Error) => done(e);
    const onClose = () => done(new Error('connection closed before an answer'));
    sock.on('data', onData);
    sock.once('error', onErr);
    sock.once('close', onClose);
  });
}

/** CONNECT host:443 to the proxy; the socket stays open for a 200 so a TLS handshake can follow. */
export async function proxyConnect(
  proxyPort: number,
  host: string,
  proxyAuth?: string,
  probeMark?: string,
): Promise<{ head: Head; socket: Socket }> {
  const socket = netConnect({ host: '127.0.0.1', port: proxyPort });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const auth = proxyAuth ? `Proxy-Authorization: ${proxyAuth}\r\n` : '';
  const mark = probeMark ? `X-Authsome-Probe: ${probeMark}\r\n` : '';
  socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n${auth}${mark}\r\n`);
  const head = await readHead(socket);
  socket.pause();
  return { head, socket };
}

export interface Interception {
  /** The chain verified against ca.pem alone. */
  authorized: boolean;
  tlsError?: string;
  /** The CA certificate the daemon sent after its leaf (PEM), i.e. the CA it really signs with. */
  daemonCaPem?: string;
  /** Status and X-Authsome-Error of a GET sent inside the tunnel. */
  inner?: Head;
}

function pemOf(c: PeerCertificate): string {
  return new X509Certificate(c.raw).toString();
}

/**
 * TLS inside an established CONNECT tunnel, trusting only `caPem`, then one GET naming a connection
 * that does not exist (and that the session's allow list excludes): the proxy answers 403 itself.
 */
export async function intercept(
  socket: Socket,
  host: string,
  caPem: string,
  connection: string,
): Promise<Interception> {
  const tls = tlsConnect({
    socket,
    servername: host,
    ca: caPem,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('TLS handshake timed out')), TIMEOUT_MS);
      tls.once('secureConnect', () => (clearTimeout(t), resolve()));
      tls.once('error', (e) => (clearTimeout(t), reject(e)));
    });
    const leaf = tls.getPeerCertificate(true);
    const issuer =
      leaf.issuerCertificate && leaf.issuerCertificate !== leaf ? leaf.issuerCertificate : undefined;
    const out: Interception = {
      authorized: tls.authorized,
      ...(issuer ? { daemonCaPem: pemOf(issuer) } : {}),
    };
    if (!tls.authorized) return { ...out, tlsError: String(tls.authorizationError) };
    tls.write(
      `GET /authsome-doctor HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: authsome-doctor\r\nX-Authsome-Connection: ${connection}\r\nConnection: close\r\n\r\n`,
    );
    return { ...out, inner: await readHead(tls) };
  } finally {
    tls.destroy();
    socket.destroy();
  }
}

/** The control API's Date header (any answer has one; this request is not signed, so it gets 401). */
export function daemonDate(controlPort: number): Promise<Date | undefined> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: controlPort, path: '/v1/status', method: 'GET', timeout: TIMEOUT_MS },
      (res) => {
        res.resume();
        const d = res.headers.date ? new Date(res.headers.date) : undefined;
        resolve(d && !Number.isNaN(d.getTime()) ? d : undefined);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
