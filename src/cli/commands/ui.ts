import { spawn } from 'node:child_process';
import type { Argv } from 'yargs';
import { Ctx, type GlobalArgs } from '../context.js';

interface Link {
  url: string;
  expires: string;
}

/** The platform's "open this URL" program; none where it would need a shell (Windows' start). */
function opener(): string | undefined {
  if (process.platform === 'darwin') return 'open';
  if (process.platform === 'linux' || process.platform.endsWith('bsd')) return 'xdg-open';
  return undefined;
}

/** Best effort: the link is already printed, so a missing opener is a note on stderr, never an error. */
function openInBrowser(url: string): void {
  const cmd = opener();
  const note = (why: string): void => {
    process.stderr.write(`authsome: could not open a browser (${why}); open the link above yourself\n`);
  };
  if (cmd === undefined) return note(`no opener on ${process.platform}`);
  try {
    const child = spawn(cmd, [url], { detached: true, stdio: 'ignore' });
    child.on('error', (e: NodeJS.ErrnoException) =>
      note(e.code === 'ENOENT' ? `${cmd} is not installed` : e.message),
    );
    child.unref();
  } catch (e) {
    note((e as Error).message);
  }
}

export function uiCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'ui',
    'print a one-time link to the dashboard (audit timeline, connections, sessions, approvals, policies, checks)',
    (a) =>
      a
        .option('open', { type: 'boolean', describe: 'also open the link in the browser (xdg-open / open)' })
        .option('ttl', {
          type: 'string',
          describe: 'how long the link stays usable: at most (and by default) 60s',
        })
        .example('$0 ui', 'one line: http://127.0.0.1:7998/ui/login#token=…')
        .example('$0 ui --open --profile agent-pr-bot', "that profile's dashboard, opened in the browser")
        .epilogue(
          'The link works once, within 60 s, and logs the browser in as the profile that ran `ui` (--profile) for 12 h, or until logout or the daemon stops. --json prints {"url", "expires"} on one line. See docs/dashboard.md.',
        ),
    async (argv) => {
      const ctx = new Ctx(argv);
      // A person's tool: a program under `authsome run` has no use for a browser session.
      ctx.refuseInSession('`authsome ui`');
      const ttl = (argv as { ttl?: string }).ttl;
      const link = await (
        await ctx.client()
      ).call<Link>('POST', '/v1/ui/link', ttl === undefined ? {} : { ttl });
      // Exactly one line on stdout, also with --json (scripts read it with `read`).
      process.stdout.write(
        ctx.out.json ? `${JSON.stringify({ url: link.url, expires: link.expires })}\n` : `${link.url}\n`,
      );
      if ((argv as { open?: boolean }).open === true) openInBrowser(link.url);
    },
  );
}
