import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { runningDaemon, startDaemon, stopDaemon } from '../../daemon/lifecycle.js';
import type { DaemonInfo } from '../../daemon/daemon-file.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit } from '../output.js';

const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** --listen ADDR (SPEC section 10): remote callers, over TLS. Itself the opt-in to bind beyond loopback. */
export const LISTEN_OPTION = {
  type: 'string',
  describe:
    'also serve the proxy and the control API to remote callers on this address or host name, over TLS with a certificate from the local CA (ports: listen.controlPort / listen.proxyPort, default 7998 / 7999)',
} as const;

function remoteText(info: DaemonInfo): string {
  const l = info.listen;
  return l
    ? `; remote callers: control https://${l.host}:${l.controlPort}, proxy https://${l.host}:${l.proxyPort}`
    : '';
}

/** The login-time service definition for this platform (systemd user unit or launchd agent). */
export function serviceUnit(home: string): { path: string; text: string; enable: string[][] } {
  const args = [process.execPath, CLI_MAIN, 'daemon', 'serve', '--home', home];
  if (process.platform === 'darwin') {
    const path = join(homedir(), 'Library/LaunchAgents/dev.authsome.daemon.plist');
    const xml = args
      .map((a) => `    <string>${a.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</string>`)
      .join('\n');
    const text = `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0"><dict>\n  <key>Label</key><string>dev.authsome.daemon</string>\n  <key>ProgramArguments</key><array>\n${xml}\n  </array>\n  <key>RunAtLoad</key><true/>\n  <key>KeepAlive</key><true/>\n</dict></plist>\n`;
    return { path, text, enable: [['launchctl', 'load', '-w', path]] };
  }
  const path = join(
    process.env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'),
    'systemd/user/authsome.service',
  );
  const quoted = args.map((a) => (/[\s"\\]/.test(a) ? `"${a.replace(/(["\\])/g, '\\$1')}"` : a)).join(' ');
  const text = `[Unit]\nDescription=authsome credential-injecting proxy\n\n[Service]\nExecStart=${quoted}\nRestart=on-failure\nKillSignal=SIGTERM\n\n[Install]\nWantedBy=default.target\n`;
  return {
    path,
    text,
    enable: [
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', 'authsome.service'],
    ],
  };
}

export function daemonCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('daemon', 'the background process that alone opens the store and runs the proxy', (d) =>
    d
      .command(
        'start',
        'start the daemon in the background',
        (a) => a.option('listen', LISTEN_OPTION),
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('daemon start');
          const { listen } = argv as { listen?: string };
          const info = await startDaemon(ctx.paths, undefined, listen ? ['--listen', listen] : []);
          if (listen && !info.listen)
            process.stderr.write(
              'authsome: the daemon was already running without --listen; stop it first (`authsome daemon stop`)\n',
            );
          emit(
            ctx.out,
            { running: true, ...info },
            () =>
              `daemon running: pid ${info.pid}, control 127.0.0.1:${info.controlPort}, proxy 127.0.0.1:${info.proxyPort}${remoteText(info)}`,
          );
        },
      )
      .command(
        'stop',
        'stop the daemon (drains requests, flushes the audit log, closes the store)',
        {},
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('daemon stop');
          const info = await stopDaemon(ctx.paths);
          emit(ctx.out, { stopped: info !== undefined, pid: info?.pid ?? null }, () =>
            info ? `daemon stopped (pid ${info.pid})` : 'daemon was not running',
          );
        },
      )
      .command('status', 'is the daemon running, and where', {}, async (argv) => {
        const ctx = new Ctx(argv);
        const info = await runningDaemon(ctx.paths);
        if (!info && !existsSync(ctx.paths.masterKey))
          throw new AppError(
            'ERR_HOME_NOT_INITIALISED',
            `no authsome home at ${ctx.paths.home}`,
            'run `authsome init` (or pass --home / set AUTHSOME_HOME)',
          );
        emit(ctx.out, info ? { running: true, ...info } : { running: false }, () =>
          info
            ? `running: pid ${info.pid} since ${info.startedAt}, control 127.0.0.1:${info.controlPort}, proxy 127.0.0.1:${info.proxyPort}${remoteText(info)}`
            : 'not running (start it with `authsome daemon start`)',
        );
        if (!info) process.exitCode = 10;
      })
      .command(
        'serve',
        'run the daemon in the foreground',
        (a) =>
          a
            .option('port', { type: 'number', describe: 'proxy port (default 7999, 0 = free port)' })
            .option('strict', {
              type: 'boolean',
              describe: 'refuse (403) hosts no provider covers instead of tunnelling',
            })
            .option('listen', LISTEN_OPTION),
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('daemon serve');
          const { port, strict, listen } = argv as { port?: number; strict?: boolean; listen?: string };
          // Loaded on demand: the daemon's dependencies (LevelDB, libsodium, X.509) slow every other command.
          const { serve } = await import('../../daemon/serve.js');
          await serve(ctx.paths.home, {
            ...(port !== undefined ? { proxyPort: port } : {}),
            ...(strict !== undefined ? { strict } : {}),
            ...(listen !== undefined ? { listen } : {}),
          });
        },
      )
      .command(
        'install',
        'write a systemd user unit (Linux) or launchd agent (macOS) that starts the daemon at login; printed, not enabled, unless --enable',
        (a) => a.option('enable', { type: 'boolean', describe: 'also enable and start it now' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('daemon install');
          const unit = serviceUnit(ctx.paths.home);
          await mkdir(dirname(unit.path), { recursive: true });
          await writeFile(unit.path, unit.text, { mode: 0o644 });
          const enable = (argv as { enable?: boolean }).enable === true;
          if (enable) {
            for (const cmd of unit.enable) {
              const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'inherit' });
              if (r.status !== 0)
                throw new AppError(
                  'ERR_DAEMON_START_FAILED',
                  `\`${cmd.join(' ')}\` failed`,
                  'run it yourself to see why',
                );
            }
          }
          emit(
            ctx.out,
            { path: unit.path, enabled: enable, enableCommands: unit.enable.map((c) => c.join(' ')) },
            () =>
              [
                `Wrote ${unit.path}`,
                enable
                  ? 'Enabled: the daemon now starts at login.'
                  : `Enable it with:\n${unit.enable.map((c) => `  ${c.join(' ')}`).join('\n')}`,
              ].join('\n'),
          );
        },
      )
      .demandCommand(1, 'name a daemon subcommand'),
  );
}
