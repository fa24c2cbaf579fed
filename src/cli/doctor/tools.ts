import { spawn } from 'node:child_process';
import { fail, pass, skip, type Check } from './types.js';

/**
 * curl, Node, Python and git, each run with exactly the environment `authsome run` gives a child
 * (HTTPS_PROXY with a session token, CA bundle variables, NODE_OPTIONS preload), against a provider
 * host. The session may use no credential, so the proxy itself answers 403 ERR_PROXY_CONNECTION_DENIED:
 * seeing that header proves the tool went through the proxy and trusted the intercepting CA.
 */
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  missing: boolean;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ code: null, stdout, stderr: e.message, missing: e.code === 'ENOENT' }),
    );
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, missing: code === 127 && /not found/i.test(stderr) }),
    );
  });
}

type Outcome = { status?: number; code?: string | null; error?: string };

const NODE_SCRIPT = `fetch(process.argv[1], { headers: { 'X-Authsome-Connection': process.argv[2] } }).then((r) => console.log(JSON.stringify({ status: r.status, code: r.headers.get('x-authsome-error') })), (e) => { console.log(JSON.stringify({ error: String((e && e.cause && (e.cause.code || e.cause.message)) || e) })); process.exitCode = 1; });`;

const PY_SCRIPT = [
  'import json, sys, urllib.request, urllib.error',
  'try:',
  '    r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={"X-Authsome-Connection": sys.argv[2]}), timeout=15)',
  '    print(json.dumps({"status": r.status, "code": r.headers.get("X-Authsome-Error")}))',
  'except urllib.error.HTTPError as e:',
  '    print(json.dumps({"status": e.code, "code": e.headers.get("X-Authsome-Error")}))',
  'except Exception as e:',
  '    print(json.dumps({"error": str(getattr(e, "reason", e))}))',
].join('\n');

function jsonOutcome(r: Run): Outcome {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Outcome;
  } catch {
    return { error: (r.stderr.trim().split('\n').pop() ?? '') || `exit ${r.code}` };
  }
}

/** curl -D - (stdout) or GIT_TRACE_CURL (stderr): the last real response's status and X-Authsome-Error. */
function headerOutcome(text: string, r: Run): Outcome {
  const errLine = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^(?:curl: \(\d+\)|fatal:|error:)/.test(l));
  if (errLine && TLS_WORDS.test(errLine)) return { error: errLine };
  const heads = [...text.matchAll(/^(?:.*<= Recv header: )?(HTTP\/[\d.]+ (\d{3}).*)$/gm)].filter(
    (m) => !/connection established/i.test(m[1]!),
  );
  const code = [...text.matchAll(/^(?:.*<= Recv header: )?x-authsome-error:\s*(\S+)/gim)].at(-1)?.[1] ?? null;
  const last = heads.at(-1);
  if (!last) return { error: errLine ?? `exit ${r.code}` };
  return { status: Number(last[2]), code };
}

interface Tool {
  id: string;
  cmd: string;
  args: (url: string, connection: string) => string[];
  env?: NodeJS.ProcessEnv;
  outcome: (r: Run) => Outcome;
  /** The variable `run` sets for this tool's trust store. */
  trust: string;
}

const TOOLS: Tool[] = [
  {
    id: 'curl',
    cmd: 'curl',
    args: (u, c) => [
      '-sS',
      '-o',
      '/dev/null',
      '-D',
      '-',
      '--max-time',
      '15',
      '-H',
      `X-Authsome-Connection: ${c}`,
      u,
    ],
    outcome: (r) => headerOutcome(r.stdout, r),
    trust: 'CURL_CA_BUNDLE',
  },
  {
    id: 'node',
    cmd: 'node',
    args: (u, c) => ['-e', NODE_SCRIPT, u, c],
    outcome: jsonOutcome,
    trust: 'NODE_EXTRA_CA_CERTS',
  },
  {
    id: 'python',
    cmd: 'python3',
    args: (u, c) => ['-c', PY_SCRIPT, u, c],
    outcome: jsonOutcome,
    trust: 'SSL_CERT_FILE',
  },
  {
    id: 'git',
    cmd: 'git',
    args: (u, c) => [
      '-c',
      'credential.helper=',
      '-c',
      'http.lowSpeedTime=15',
      '-c',
      `http.extraHeader=X-Authsome-Connection: ${c}`,
      'ls-remote',
      `${u}.git`,
    ],
    env: {
      // Proxy credentials on the first CONNECT: git's default (any method) first tries without them,
      // and that refused attempt would be an anonymous proxy.deny in the user's audit log.
      GIT_HTTP_PROXY_AUTHMETHOD: 'basic',
      GIT_TERMINAL_PROMPT: '0',
      GIT_TRACE_CURL: '1',
      GIT_TRACE_CURL_NO_DATA: '1',
      GIT_TRACE_REDACT: '1',
    },
    outcome: (r) => headerOutcome(r.stderr, r),
    trust: 'GIT_SSL_CAINFO',
  },
];

const TLS_WORDS = /certificate|CERT_|SIGNATURE|issuer|SSL|TLS|handshake/i;

export async function checkTools(
  url: string,
  connection: string,
  env: Record<string, string>,
  secretParts: readonly string[],
): Promise<Check[]> {
  const redact = (s: string) => secretParts.reduce((acc, t) => acc.split(t).join('[session token]'), s);
  return Promise.all(
    TOOLS.map(async (t): Promise<Check> => {
      const title = `${t.id} as \`run\` sets it up`;
      const r = await run(t.cmd, t.args(url, connection), { ...process.env, ...env, ...t.env });
      if (r.missing) return skip(`tool:${t.id}`, title, `${t.cmd} is not installed`);
      const o = t.outcome(r);
      if (o.status === 403 && o.code === 'ERR_PROXY_CONNECTION_DENIED')
        return pass(`tool:${t.id}`, title, `went through the proxy and trusted the CA (${t.trust})`);
      if (o.error && TLS_WORDS.test(o.error)) {
        return fail(
          `tool:${t.id}`,
          title,
          redact(`TLS failed: ${o.error}`),
          `the tool does not trust the CA through ${t.trust}=${env[t.trust] ?? '?'}: fix the "local CA" / "proxy round trip" lines above; or rm ${env['SSL_CERT_FILE'] ?? 'the bundle'} (rebuilt by the next \`authsome run\`)`,
          'ERR_CA_UNAVAILABLE',
        );
      }
      if (o.error)
        return fail(
          `tool:${t.id}`,
          title,
          redact(`failed: ${o.error}`),
          'see docs/troubleshooting.md ("a tool ignores the proxy")',
          'ERR_UPSTREAM_FAILED',
        );
      if (o.code)
        return fail(
          `tool:${t.id}`,
          title,
          `the proxy answered ${o.status} ${o.code}, expected 403 ERR_PROXY_CONNECTION_DENIED`,
          'authsome daemon stop && authsome daemon start',
          'ERR_INTERNAL',
        );
      return fail(
        `tool:${t.id}`,
        title,
        `got ${o.status ?? 'no answer'} without an authsome header: the tool did not use HTTPS_PROXY`,
        'see docs/troubleshooting.md ("a tool ignores the proxy")',
        'ERR_UPSTREAM_FAILED',
      );
    }),
  );
}
