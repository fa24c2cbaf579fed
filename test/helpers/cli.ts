import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a child process against one temp home, ports picked by the OS. */
export class TestHome {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(extraEnv: NodeJS.ProcessEnv = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'authsome-test-'));
    this.env = {
      ...process.env,
      AUTHSOME_HOME: join(this.dir, 'home'),
      AUTHSOME_DAEMON_PORT: '0',
      AUTHSOME_PROXY_PORT: '0',
      NO_COLOR: '1',
      ...extraEnv,
    };
  }

  get home(): string {
    return this.env['AUTHSOME_HOME']!;
  }

  run(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { ...this.env, ...opts.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(opts.input ?? '');
    });
  }

  async json<T = Record<string, unknown>>(args: string[], opts: { input?: string } = {}): Promise<T> {
    const r = await this.run([...args, '--json'], opts);
    if (r.code !== 0) throw new Error(`authsome ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  async cleanup(): Promise<void> {
    await this.run(['daemon', 'stop']);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
