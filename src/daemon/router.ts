import { AppError } from '../errors.js';

export interface RouteContext {
  /** The verified caller (from the PoP token's sub, checked against the registry). */
  handle: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export type Handler = (ctx: RouteContext) => Promise<{ status?: number; body: unknown }>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

/** A tiny exact-segment router: "/v1/connections/:provider/:connection". */
export class Router {
  readonly #routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  find(method: string, pathname: string): { handler: Handler; params: Record<string, string> } {
    const segs = pathname.split('/').filter(Boolean);
    let pathMatched = false;
    for (const r of this.#routes) {
      if (r.parts.length !== segs.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < segs.length; i++) {
        const p = r.parts[i]!;
        const s = segs[i]!;
        if (p.startsWith(':')) {
          let decoded: string;
          try {
            decoded = decodeURIComponent(s);
          } catch {
            ok = false;
            break;
          }
          params[p.slice(1)] = decoded;
        } else if (p !== s) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      pathMatched = true;
      if (r.method === method) return { handler: r.handler, params };
    }
    throw new AppError(
      'ERR_NOT_FOUND',
      pathMatched ? `method ${method} not allowed here` : `no such endpoint ${pathname}`,
      'upgrade the CLI and the daemon together',
    );
  }
}

export function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw new AppError('ERR_INPUT_INVALID', `"${key}" must be a string`, 'check the request');
  return v;
}
