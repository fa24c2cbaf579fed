/**
 * Preloaded by `authsome run` / `proxy env` through NODE_OPTIONS=--import. Node 20's built-in
 * fetch ignores HTTPS_PROXY; undici's global dispatcher symbol is shared with the bundled copy,
 * so installing an env-aware proxy agent here routes global fetch through authsome.
 * Newer Node honours NODE_USE_ENV_PROXY=1 by itself; this keeps older ones working.
 */
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

if (process.env['HTTPS_PROXY'] || process.env['HTTP_PROXY']) {
  setGlobalDispatcher(new EnvHttpProxyAgent());
}
