import { describe, expect, it } from 'vitest';
import { serviceUnit } from '../../src/cli/commands/daemon.js';

describe('daemon install', () => {
  it('writes a unit that serves this home in the foreground', () => {
    const unit = serviceUnit('/home/u/my authsome');
    if (process.platform === 'darwin') {
      expect(unit.text).toContain('<string>/home/u/my authsome</string>');
    } else {
      expect(unit.path).toMatch(/systemd\/user\/authsome\.service$/);
      expect(unit.text).toMatch(/^ExecStart=.* daemon serve --home "\/home\/u\/my authsome"$/m);
      expect(unit.enable.at(-1)).toEqual(['systemctl', '--user', 'enable', '--now', 'authsome.service']);
    }
  });
});
