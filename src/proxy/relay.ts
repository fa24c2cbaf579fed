import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders } from './headers.js';

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
 * Streams an upstream response straight into the client's ServerResponse with backpressure (pause
 * the upstream when res.write() says the client is full, resume on 'drain'). Driving undici's
 * dispatch handler directly, instead of request() + stream.pipeline, avoids a Readable, an
 * AbortController and several promise hops per request — about half the proxy's CPU per request.
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #requestId: string;
  readonly #done: (err?: Error) => void;
  #controller: Controller | undefined;
  #settled = false;

  constructor(res: ServerResponse, requestId: string, done: (err?: Error) => void) {
    this.#res = res;
    this.#requestId = requestId;
    this.#done = done;
    // The caller went away: stop the upstream request too.
    res.once('close', () => {
      if (!res.writableFinished) this.#controller?.abort(new Error('client closed'));
    });
  }

  #settle(err?: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#done(err);
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
    if (statusCode < 200) return;
    const res = this.#res;
    const out = clientResponseHeaders(flatHeaders(controller as Controller, headers));
    out.push('x-authsome-request-id', this.#requestId);
    res.writeHead(statusCode, out);
    // Server-sent events: the client must see the headers before the first event arrives.
    const ct = headers['content-type'];
    if (typeof ct === 'string' && ct.startsWith('text/event-stream')) res.flushHeaders();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#res.end();
    this.#settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#settle(err);
  }
}
