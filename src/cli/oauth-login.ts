import { AppError } from '../errors.js';
import type { DaemonClient } from '../daemon/client.js';
import { openBrowser } from '../providers/oauth/browser.js';
import type { Output } from './output.js';
import type { FlowStart } from '../daemon/oauth.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Device (RFC 8628) and PKCE (RFC 7636) logins. The daemon runs the flow (it holds the client
 * secret, the device code and the verifier); this side shows the user what to do and waits.
 */
export async function oauthLogin(
  client: DaemonClient,
  out: Output,
  o: { provider: string; connection: string; flow: 'device' | 'pkce'; scopes?: string | undefined },
): Promise<{ provider: string; connection: string; flow: string }> {
  const start = await client.call<FlowStart>('POST', '/v1/oauth/flows', {
    provider: o.provider,
    connection: o.connection,
    flow: o.flow,
    ...(o.scopes ? { scopes: o.scopes } : {}),
  });
  if (o.flow === 'device') {
    process.stderr.write(
      `To sign in, open ${start.verificationUriComplete ?? start.verificationUri}\nand enter the code: ${start.userCode}\n`,
    );
  } else {
    const opened = start.authorizeUrl ? await openBrowser(start.authorizeUrl) : false;
    process.stderr.write(
      opened
        ? 'Opened your browser to sign in. Waiting…\n'
        : `Open this URL in a browser on this machine to sign in:\n  ${start.authorizeUrl}\n`,
    );
  }
  let cancelled = false;
  const onInt = () => {
    cancelled = true;
  };
  process.once('SIGINT', onInt);
  const spin = process.stderr.isTTY && !out.json;
  try {
    for (let i = 0; ; i++) {
      if (cancelled) {
        await client.call('DELETE', `/v1/oauth/flows/${start.id}`).catch(() => undefined);
        throw new AppError(
          'ERR_OAUTH_FAILED',
          'login cancelled',
          `run \`authsome login ${o.provider} --flow ${o.flow}\` again when ready`,
        );
      }
      const st = await client.call<{
        state: string;
        error?: { code: string; message: string; hint?: string };
      }>('GET', `/v1/oauth/flows/${start.id}`);
      if (st.state === 'done') break;
      if (st.state === 'error') {
        const code =
          st.error?.code === 'ERR_TOKEN_REFRESH_FAILED' ? 'ERR_TOKEN_REFRESH_FAILED' : 'ERR_OAUTH_FAILED';
        throw new AppError(
          code,
          st.error?.message ?? 'the login failed',
          st.error?.hint ?? `run \`authsome login ${o.provider} --flow ${o.flow}\` again`,
        );
      }
      if (spin)
        process.stderr.write(
          `\r${FRAMES[i % FRAMES.length]} waiting for you to finish signing in… (Ctrl-C cancels)`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    process.off('SIGINT', onInt);
    if (spin) process.stderr.write('\r\x1b[K');
  }
  return { provider: o.provider, connection: o.connection, flow: o.flow };
}
