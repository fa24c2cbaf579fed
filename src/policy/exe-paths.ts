import type { Policy, PolicyRule } from './types.js';

export interface ExeResolution {
  readonly policy: Policy;
  /** For the person setting the policy; each names the rule ("rules[4].exe[1]: …"). */
  readonly warnings: string[];
}

/**
 * `exe` paths as the kernel reports them: /proc/PID/exe is the real path (symlinks resolved), so a
 * rule naming /usr/bin/python3 (a symlink to python3.12) is stored as its target, once, at
 * `policy set`. A path that does not exist is kept as written, with a warning (it may be installed
 * later, but until then it matches nothing). Without /proc no caller is ever attributed, so every
 * exe rule is dead: said once.
 */
export async function resolveExePaths(
  policy: Policy,
  opts: { realpath: (p: string) => Promise<string>; hasProc: boolean },
): Promise<ExeResolution> {
  const warnings: string[] = [];
  const rules: PolicyRule[] = [];
  for (const [i, rule] of policy.rules.entries()) {
    if (!rule.exe) {
      rules.push(rule);
      continue;
    }
    const resolved: string[] = [];
    for (const [j, p] of rule.exe.entries()) {
      try {
        const real = await opts.realpath(p);
        resolved.push(real);
        if (real !== p) warnings.push(`rules[${i}].exe[${j}]: ${p} is stored as its real path ${real}`);
      } catch (e) {
        resolved.push(p);
        const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be resolved';
        warnings.push(
          `rules[${i}].exe[${j}]: ${p} ${why}; kept as written, it matches no caller until it does`,
        );
      }
    }
    rules.push({ ...rule, exe: [...new Set(resolved)] });
  }
  if (!opts.hasProc && rules.some((r) => r.exe))
    warnings.push('this system has no /proc: callers cannot be attributed, so exe rules will never match');
  return { policy: { ...policy, rules }, warnings };
}
