import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { TestHome } from '../helpers/cli.js';
import { alive, daemonJson, waitGone } from './helpers.js';

/**
 * A running daemon keeps its own traces straight: a daemon.json deleted or overwritten with junk is
 * written again (else `daemon status` says "not running", `daemon stop` does nothing and every other
 * command finds the store locked), and a daemon whose home was deleted stops instead of holding its
 * ports beside the daemon of a new home at the same path.
 */
describe('the daemon watches its home', () => {
  const homes: TestHome[] = [];
  afterAll(async () => {
    for (const t of homes) await t.cleanup();
  });

  const started = async (): Promise<{ t: TestHome; pid: number }> => {
    const t = new TestHome();
    homes.push(t);
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    return { t, pid: daemonJson(t.home)!.pid };
  };

  it('a daemon.json overwritten with junk is written again; daemon status and stop find the daemon', async () => {
    const { t, pid } = await started();
    writeFileSync(join(t.home, 'server', 'daemon.json'), 'garbage\n');
    const deadline = Date.now() + 8_000;
    while (daemonJson(t.home)?.pid !== pid && Date.now() < deadline) await sleep(100);
    expect(daemonJson(t.home)?.pid).toBe(pid);
    expect((await t.run(['daemon', 'status'])).code).toBe(0);
    expect((await t.run(['daemon', 'stop'])).code).toBe(0);
    await waitGone(pid);
  });

  it('a daemon whose home is deleted and at once created again stops, and writes nothing into the new one', async () => {
    const { t, pid } = await started();
    rmSync(t.home, { recursive: true, force: true });
    mkdirSync(join(t.home, 'server'), { recursive: true, mode: 0o700 });
    await waitGone(pid, 8_000);
    expect(existsSync(join(t.home, 'server', 'daemon.json'))).toBe(false);
  });

  it('a daemon whose home is deleted stops', async () => {
    const { t, pid } = await started();
    rmSync(t.home, { recursive: true, force: true });
    await waitGone(pid, 8_000);
    expect(alive(pid)).toBe(false);
  });
});
