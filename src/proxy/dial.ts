import { connect as netConnect, type Socket } from 'node:net';
import {
  connect as tlsConnect,
  createSecureContext,
  rootCertificates,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';
import { AppError } from '../errors.js';
import type { DialAddress } from './address-policy.js';
import { STREAM_HWM } from './limits.js';

/**
 * Upstream trust: the system roots plus the operator's extra CA, never the local CA. Built once —
 * a `ca` list passed to tls.connect would be parsed again for every connection.
 * rejectUnauthorized is passed explicitly on every dial, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the
 * daemon's environment cannot switch verification off (Node only reads it for the default).
 */
export function upstreamTrust(extraCaPem: string | undefined): SecureContext {
  const extra = extraCaPem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return createSecureContext({ ca: [...rootCertificates, ...extra], minVersion: 'TLSv1.2' });
}

export interface DialOptions {
  readonly timeoutMs: number;
  /** Present for TLS: the name the certificate must carry (and the SNI). */
  readonly tls?: {
    readonly servername: string;
    readonly context: SecureContext;
    readonly session?: Buffer | undefined;
  };
}

function timeoutError(): AppError {
  return new AppError('ERR_UPSTREAM_TIMEOUT', 'connecting to the upstream timed out');
}

/** Connects to exactly `addr` (the checked address). Resolves once TCP (and TLS) is up. */
export function dial(addr: DialAddress, opts: DialOptions): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    let tcpUp = false;
    const base = {
      host: addr.address,
      port: addr.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      highWaterMark: STREAM_HWM,
    };
    const socket: Socket | TLSSocket = opts.tls
      ? tlsConnect({
          ...base,
          servername: opts.tls.servername,
          secureContext: opts.tls.context,
          rejectUnauthorized: true,
          ALPNProtocols: ['http/1.1'],
          ...(opts.tls.session ? { session: opts.tls.session } : {}),
        })
      : netConnect(base);
    const timer = setTimeout(
      () => {
        const err = timeoutError();
        socket.destroy(err);
      },
      opts.timeoutMs || 2 ** 31 - 1,
    );
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
    };
    const onError = (e: Error): void => {
      cleanup();
      if (e instanceof AppError) return reject(e);
      // An error after TCP is up but before the handshake finished is the TLS verification
      // (or protocol) failing: say so, so the caller sees ERR_UPSTREAM_TLS and not a generic 502.
      if (opts.tls && tcpUp)
        return reject(
          new AppError('ERR_UPSTREAM_TLS', 'the upstream TLS certificate could not be verified', undefined, {
            cause: e,
          }),
        );
      reject(new AppError('ERR_UPSTREAM_FAILED', 'cannot connect to the upstream', undefined, { cause: e }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      tcpUp = true;
    });
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}
