// authsome as a library: a Node program (an agent framework, a test harness) that starts its own
// child process behind the proxy, without `authsome run`. It mints a session token for the child,
// gives the child the same environment `run` would (never a secret), revokes the token when the
// child exits, and reads what the proxy did from the audit trail.
//
//   node examples/library.mjs https://api.github.com/user              (after `authsome login github`)
//   AUTHSOME_ALLOW=github node examples/library.mjs https://api.github.com/user
import { spawn } from 'node:child_process';
import { Authsome } from 'authsome';

const url = process.argv[2] ?? 'https://api.github.com/user';
const authsome = await Authsome.connect(); // $AUTHSOME_HOME or ~/.authsome, its active profile
try {
  const explained = await authsome.explain(url);
  console.log(`explain: ${explained.decision} (${explained.reason})`);

  const session = await authsome.sessionEnv({
    allow: process.env.AUTHSOME_ALLOW, // e.g. "github" or "github:work"; undefined = every connection
    ttl: '10m',
    label: 'examples/library.mjs',
  });
  // The child: any program; here Node's fetch, which the session's NODE_OPTIONS routes through the proxy.
  const child = spawn(
    process.execPath,
    ['-e', 'fetch(process.argv[1]).then(async (r) => console.log("child:", r.status, await r.text()))', url],
    { env: session.childEnv(), stdio: 'inherit' },
  );
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  await session.revoke();

  const injected = await authsome.audit({ event: 'proxy.inject', since: '5m', limit: 1 });
  for (const e of injected)
    console.log(`audit: ${e.event} ${e.provider}/${e.connection} ${e.method} ${e.host}${e.path}`);
  process.exitCode = Number(code);
} catch (e) {
  // Errors carry a stable code and a hint (docs/errors.md); none holds a secret.
  console.error(`${e.message} [${e.code ?? 'error'}]${e.hint ? `\n  next: ${e.hint}` : ''}`);
  process.exitCode = 1;
} finally {
  await authsome.close(); // revokes any session still open
}
