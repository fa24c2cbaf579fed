import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { AppError } from '../errors.js';
import { packageRoot } from '../config/settings.js';
import { setSecurityHeaders } from './ui-http.js';

/**
 * The built page (dist/ui, made by `npm run build`): index.html for the page's paths, hashed files
 * under /ui/assets/. Only names of that one flat shape are served, read once and kept.
 */

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
/** The page's own routes: all of them are the one HTML file (the page reads its location). */
const PAGES = new Set(['/ui/', '/ui/login']);
const ASSET = /^\/ui\/assets\/([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*(\.[a-z]+))$/;

export class UiStatic {
  readonly #dir: string;
  readonly #cache = new Map<string, Buffer>();

  constructor(dir: string = join(packageRoot(), 'dist', 'ui')) {
    this.#dir = dir;
  }

  /** true when pathname is one of the page's files (and it was sent). */
  async serve(pathname: string, method: string, res: ServerResponse): Promise<boolean> {
    let file: string;
    let ext: string;
    let immutable = false;
    if (PAGES.has(pathname)) {
      file = 'index.html';
      ext = '.html';
    } else {
      const m = ASSET.exec(pathname);
      if (!m) return false;
      file = join('assets', m[1]!);
      ext = m[2]!;
      immutable = true;
    }
    const type = TYPES[ext];
    if (type === undefined) return false;
    if (method !== 'GET' && method !== 'HEAD')
      throw new AppError('ERR_NOT_FOUND', `method ${method} not allowed here`, 'the page is read with GET');
    const body = await this.#read(file);
    setSecurityHeaders(res);
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.length,
      // Asset names carry a hash of their content; the HTML names the current ones, so it is never kept.
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-store',
    });
    res.end(method === 'HEAD' ? undefined : body);
    return true;
  }

  async #read(file: string): Promise<Buffer> {
    const hit = this.#cache.get(file);
    if (hit) return hit;
    let body: Buffer;
    try {
      body = await readFile(join(this.#dir, file));
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new AppError(
        missing ? 'ERR_NOT_FOUND' : 'ERR_INTERNAL',
        missing ? `the dashboard file ${file} is not there` : `cannot read the dashboard file ${file}`,
        missing ? 'build the dashboard: `npm run build` (it writes dist/ui)' : 'see server/daemon.log',
      );
    }
    this.#cache.set(file, body);
    return body;
  }
}
