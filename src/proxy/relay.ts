import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { AppError } from '../errors.js';
import { decoderFor, hiddenCoding, opaqueTransferCoding, type Decoder } from './decode.js';
import { clientResponseHeaders } from './headers.js';
import { STREAM_HWM } from './limits.js';
import { SecretScanner } from './secret-scan.js';

type Controller = Dispatcher.DispatchController & { rawHeaders?: Buffer[] | null | undefined };

function flatHeaders(
  controller: Controller,
  headers: Record<string, string | string[] | undefined>,
): string[] {
  const raw = controller.rawHeaders;
  const out: string[] = [];
  if (raw) {
    for (let i = 0; i < raw.length; i += 2)
      out.push(raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1'));
    return out;
  }
  for (const [k, v] of Object.entries(headers)) {
    if (Array.isArray(v)) for (const x of v) out.push(k, x);
    else if (v !== undefined) out.push(k, v);
  }
  return out;
}

/**
 * Bytes that may queue for a slow client before the upstream is paused (per response): the proxy's
 * stream mark, the same slack its sockets and servers use (limits.ts).
 */
export const PAUSE_ABOVE = STREAM_HWM;

/** For responses of injected requests: what to look for, and whom to tell (once) when it is found. */
export interface EchoGuard {
  readonly needles: readonly Buffer[];
  onEcho(where: 'header' | 'body'): void;
}

/**
 * Streams an upstream response straight into the client's ServerResponse with backpressure (pause
 * the upstream once more than PAUSE_ABOVE bytes wait for the client, resume on 'drain'). Driving undici's
 * dispatch handler directly, instead of request() + stream.pipeline, avoids a Readable, an
 * AbortController and several promise hops per request — about half the proxy's CPU per request.
 *
 * With an EchoGuard (injected requests only), the injected secret never reaches the caller: found in
 * a response header → 502 ERR_UPSTREAM_SECRET_ECHO before anything is sent; found in the body →
 * masked in place (secret-scan.ts). A compressed body (the proxy asked for none) is decoded first.
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #requestId: string;
  readonly #done: (err?: Error) => void;
  readonly #guard: EchoGuard | undefined;
  #scanner: SecretScanner | undefined;
  #decoder: Decoder | undefined;
  #bodyReported = false;
  #controller: Controller | undefined;
  #settled = false;
  #paused = false;

  constructor(res: ServerResponse, requestId: string, done: (err?: Error) => void, guard?: EchoGuard) {
    this.#res = res;
    this.#requestId = requestId;
    this.#done = done;
    this.#guard = guard;
    // The caller went away: stop the upstream request too.
    res.once('close', () => {
      if (!res.writableFinished) this.#controller?.abort(new Error('client closed'));
    });
  }

  #settle(err?: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    if (err) this.#decoder?.destroy();
    this.#done(err);
  }

  /** Refuses the response before its head is written: the caller gets a JSON error instead. */
  #refuse(controller: Dispatcher.DispatchController, err: AppError): void {
    this.#settle(err);
    controller.abort(err);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller as Controller;
    if (this.#res.destroyed) controller.abort(new Error('client closed'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx informational answers (100-continue, 103) are not relayed; Node answers 100 itself.
    if (statusCode < 200 || this.#settled) return;
    const res = this.#res;
    const raw = flatHeaders(controller as Controller, headers);
    let out = clientResponseHeaders(raw);
    if (this.#guard) {
      const scanner = (this.#scanner = new SecretScanner(this.#guard.needles));
      // One pass over all names and values ("\n" cannot occur inside either).
      if (scanner.inText(out.join('\n'))) {
        this.#guard.onEcho('header');
        return this.#refuse(
          controller,
          new AppError(
            'ERR_UPSTREAM_SECRET_ECHO',
            'the upstream answered with the injected credential in a header',
          ),
        );
      }
      // Codings are decided on the response as received, before hop-by-hop fields are removed: a
      // coding the upstream hides by naming it in Connection is refused, never passed on unscanned.
      const decoded = hiddenCoding(raw) || opaqueTransferCoding(raw) ? 'unsupported' : decoderFor(raw);
      if (decoded === 'unsupported') {
        return this.#refuse(
          controller,
          new AppError(
            'ERR_UPSTREAM_FAILED',
            'the upstream used a content or transfer coding the proxy cannot inspect',
          ),
        );
      }
      if (decoded) {
        out = clientResponseHeaders(decoded.headers);
        this.#decoder = decoded.decoder;
        this.#decoder.output.on('data', (d: Buffer) => this.#emit(d, this.#decoder!.output));
        this.#decoder.output.once('error', (e: Error) => {
          res.destroy();
          this.#settle(e);
          controller.abort(e);
        });
      }
    }
    out.push('x-authsome-request-id', this.#requestId);
    res.writeHead(statusCode, out);
    // Server-sent events: the client must see the headers before the first event arrives.
    const ct = headers['content-type'];
    if (typeof ct === 'string' && ct.startsWith('text/event-stream')) res.flushHeaders();
  }

  /** Writes scanned bytes; `pausable` is what to pause while the client is full. */
  #emit(chunk: Buffer, pausable: { pause(): void; resume(): void }): void {
    let data = chunk;
    const scanner = this.#scanner;
    if (scanner) {
      data = scanner.push(chunk);
      if (scanner.hits > 0 && !this.#bodyReported) {
        this.#bodyReported = true;
        this.#guard?.onEcho('body');
      }
      if (data.length === 0) return;
    }
    // Backpressure with slack: pausing at the socket's 16 KiB mark would stop the upstream after
    // nearly every chunk of a large body; up to PAUSE_ABOVE bytes may queue for the client instead.
    if (!this.#res.write(data) && !this.#paused && this.#res.writableLength > PAUSE_ABOVE) {
      this.#paused = true;
      pausable.pause();
      this.#res.once('drain', () => {
        this.#paused = false;
        pausable.resume();
      });
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    const decoder = this.#decoder;
    if (!decoder) return this.#emit(chunk, controller);
    decoder.used = true;
    if (!decoder.input.write(chunk)) {
      controller.pause();
      decoder.input.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    const finish = (): void => {
      const rest = this.#scanner?.flush();
      if (rest && rest.length > 0) this.#res.write(rest);
      this.#res.end();
      this.#settle();
    };
    const decoder = this.#decoder;
    if (!decoder || !decoder.used) {
      decoder?.destroy();
      return finish();
    }
    decoder.output.once('end', finish);
    decoder.input.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#settle(err);
  }
}
