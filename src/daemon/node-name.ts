import { hostname } from 'node:os';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { AppError } from '../errors.js';
import { isValidName } from '../names.js';

/**
 * Team mode (SPEC section 10): each node's name, fixed at init and kept in server/node.json. It names
 * the node's row in authsome_nodes (and, later, its audit chain), so it never changes after init.
 */

/** A name from the host name, made to fit the name rule (section 2); 'node' when nothing is left. */
export function defaultNodeName(host: string = hostname()): string {
  const name = host
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64)
    .replace(/[^a-z0-9]+$/, '');
  return isValidName(name) ? name : 'node';
}

export async function readNodeName(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new AppError(
      'ERR_HOME_NOT_INITIALISED',
      `this home has a database URL but no node name (${path})`,
      'make a node home with `authsome init --store URL` (the first node) or `authsome init --join URL --master-key FILE`',
    );
  }
  let name: unknown;
  try {
    name = (JSON.parse(text) as { name?: unknown }).name;
  } catch {
    name = undefined;
  }
  if (!isValidName(name))
    throw new AppError(
      'ERR_INPUT_INVALID',
      `${path} is damaged: it must hold {"name": "<node name>"}`,
      'restore it; the name must stay the one this node was given at init',
    );
  return name;
}

export async function writeNodeName(path: string, name: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ name }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
