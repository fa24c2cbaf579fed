import type { Argv } from 'yargs';
import { runningDaemon, startDaemon, stopDaemon } from '../../daemon/lifecycle.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit } from '../output.js';

export function daemonCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('daemon', 'the background process that alone opens the store and runs the proxy', (d) =>
    d
      .command('start', 'start the daemon in the background', {}, async (argv) => {
        const ctx = new Ctx(argv);
        const info = await startDaemon(ctx.paths);
        emit(ctx.out, { running: true, ...info }, () => `daemon running: pid ${info.pid}, control 127.0.0.1:${info.controlPort}, proxy 127.0.0.1:${info.proxyPort}`);
      })
      .command('stop', 'stop the daemon (drains requests, flushes the audit log, closes the store)', {}, async (argv) => {
        const ctx = new Ctx(argv);
        const info = await stopDaemon(ctx.paths);
        emit(ctx.out, { stopped: info !== undefined, pid: info?.pid ?? null }, () => (info ? `daemon stopped (pid ${info.pid})` : 'daemon was not running'));
      })
      .command('status', 'is the daemon running, and where', {}, async (argv) => {
        const ctx = new Ctx(argv);
        const info = await runningDaemon(ctx.paths);
        emit(ctx.out, info ? { running: true, ...info } : { running: false }, () =>
          info ? `running: pid ${info.pid} since ${info.startedAt}, control 127.0.0.1:${info.controlPort}, proxy 127.0.0.1:${info.proxyPort}` : 'not running (start it with `authsome daemon start`)',
        );
        if (!info) process.exitCode = 10;
      })
      .command(
        'serve',
        'run the daemon in the foreground',
        (a) => a.option('port', { type: 'number', describe: 'proxy port (default 7999, 0 = free port)' }).option('strict', { type: 'boolean', describe: 'refuse (403) hosts no provider covers instead of tunnelling' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          const { port, strict } = argv as { port?: number; strict?: boolean };
          // Loaded on demand: the daemon's dependencies (LevelDB, libsodium, X.509) slow every other command.
          const { serve } = await import('../../daemon/serve.js');
          await serve(ctx.paths.home, { ...(port !== undefined ? { proxyPort: port } : {}), ...(strict !== undefined ? { strict } : {}) });
        },
      )
      .demandCommand(1, 'name a daemon subcommand'),
  );
}
