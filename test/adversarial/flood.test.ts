import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdvEnv, HOST } from './env.js';
import { statusOf } from './wire.js';

/**
 * Issue 18 items 1 and 3, attacked as a hostile process on loopback would: sockets that never finish
 * their head must not lock identified callers out, and refusals without a token must not fill the disk.
 */
let e: AdvEnv;
beforeAll(async () => {
  // Node's own head timeout far away: only the proxy's budget for head-less connections (the default
  // 256) protects here.
  e = await AdvEnv.start({ proxy: { maxConnections: 600, headersTimeoutMs: 60_000 } });
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

describe('slow heads (item 1)', () => {
  it.each([
    ['trickling an unfinished CONNECT head', 'trickle'],
    ['that never send a byte', 'silent'],
  ])(
    'another process holding 600 sockets %s (the whole global cap), reopened as they close, does not lock another profile out',
    async (_what, mode) => {
      const attacker = spawn(
        process.execPath,
        [join(import.meta.dirname, 'slow-heads.mjs'), String(e.proxyPort), '600', mode, HOST.api, '1000'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        await new Promise<void>((resolve, reject) => {
          attacker.stdout.once('data', () => resolve());
          attacker.once('exit', () => reject(new Error('attacker exited')));
        });
        await new Promise((r) => setTimeout(r, 1500));
        const results: number[] = [];
        for (let i = 0; i < 15; i++) {
          results.push(
            await e.wire
              .connect(`${HOST.api}:443`, [`Proxy-Authorization: ${e.auth('other', e.tokens.other)}`])
              .then(
                (h) => {
                  h.socket.destroy();
                  return h.status;
                },
                () => 0, // closed before an answer
              ),
          );
        }
        expect(results).toEqual(Array(15).fill(200));
      } finally {
        attacker.kill('SIGKILL');
      }
    },
    60_000,
  );
});

describe('refusals without a token (item 3)', () => {
  it('16 workers with 30 KB paths: bounded records, folded with counts, nothing lost; injections stay whole', async () => {
    const log = join(e.t.home, 'audit.log');
    const before = statSync(log).size;
    const path = `/${'p'.repeat(30_000)}`;
    let sent = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const r = await e.wire.http(
          `GET http://${HOST.decoy}${path} HTTP/1.1\r\nHost: ${HOST.decoy}\r\nConnection: close\r\n\r\n`,
        );
        if (statusOf(r) === 407) sent++;
      }
    };
    const injected: string[] = [];
    const inject = async (): Promise<void> => {
      while (!stop) {
        const r = await e.wire.exchange(
          `${HOST.api}:443`,
          `GET /plain HTTP/1.1\nHost: ${HOST.api}\nConnection: close\n\n`,
          { auth: e.auth(), ca: e.localCa },
        );
        if (statusOf(r) === 200) injected.push(/x-authsome-request-id: (\S+)/i.exec(r)![1]!);
      }
    };
    const workers = [...Array.from({ length: 16 }, () => worker()), inject()];
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    await Promise.all(workers);
    expect(sent).toBeGreaterThan(100);
    expect(injected.length).toBeGreaterThan(0);
    // Stopping the daemon writes what it was still counting.
    await e.ok(['daemon', 'stop']);
    const grew = statSync(log).size - before;
    expect(grew).toBeLessThan(200_000);
    const lines = e.auditLines();
    const denials = lines.filter(
      (l) => l['event'] === 'proxy.deny' && l['profile'] === '-' && l['reason'] === 'ERR_PROXY_AUTH_REQUIRED',
    );
    for (const d of denials) expect(String(d['path'] ?? '').length).toBeLessThanOrEqual(256);
    const full = denials.filter((d) => d['count'] === undefined);
    expect(full.length).toBeGreaterThan(0);
    for (const d of full) expect(d['detail']).toMatchObject({ path_len: path.length, path_cut: true });
    const folded = denials.filter((d) => d['count'] !== undefined);
    expect(folded.length).toBeGreaterThan(0);
    const total = full.length + folded.reduce((n, d) => n + (d['count'] as number), 0);
    expect(total).toBe(sent);
    // Every injection has its own record.
    const ids = new Set(lines.filter((l) => l['event'] === 'proxy.inject').map((l) => l['request_id']));
    for (const id of injected) expect(ids.has(id)).toBe(true);
    // The default view shows what matters and says what it left out.
    const view = await e.ok(['audit', '--limit', '5']);
    expect(view).toContain('proxy.inject');
    expect(view).not.toContain('ERR_PROXY_AUTH_REQUIRED');
    expect(view).toMatch(new RegExp(`not shown: ${sent} refused requests without a session token`));
    const v = await e.cli(['audit', 'verify']);
    expect(v.code, v.stderr).toBe(0);
  }, 90_000);
});

describe('leaks', () => {
  it('no canary anywhere', () => {
    expect(e.leaks()).toEqual([]);
  });
});
