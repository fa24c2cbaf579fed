import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, isAppError } from '../errors.js';

const MAX_BODY = 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY)
      throw new AppError('ERR_INPUT_INVALID', 'request body too large', 'send at most 1 MiB');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through to the one error below
  }
  throw new AppError('ERR_INPUT_INVALID', 'request body is not a JSON object', 'send a JSON object');
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function sendError(res: ServerResponse, err: unknown): void {
  const e = isAppError(err) ? err : new AppError('ERR_INTERNAL', 'internal error', 'see server/daemon.log');
  if (!isAppError(err)) console.error('control API internal error:', err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.setHeader('x-authsome-error', e.code);
  sendJson(res, e.status, { error: e.toJSON() });
}
