/** The page's calls to its own daemon (same origin; the cookie rides along, the CSRF token in a header). */

export interface Me {
  profile: string;
  owner: boolean;
  profiles: string[];
  csrf: string;
  sessionId: string;
  sessionExpiresAt: string;
  node: string;
  version: string;
  controlPort: number;
  proxyPort: number;
}

export interface AuditRecord {
  ts: string;
  seq: number;
  event: string;
  profile: string;
  provider?: string;
  connection?: string;
  method?: string;
  host?: string;
  path?: string;
  status?: number;
  request_id?: string;
  reason?: string;
  rule?: number | null;
  pid?: number | null;
  exe?: string | null;
  count?: number;
  node?: string;
  detail?: Record<string, string | number | boolean>;
}

export interface Facets {
  profiles: string[];
  providers: string[];
  connections: string[];
  events: string[];
  nodes: string[];
  allEvents: string[];
}

export interface Verify {
  ok: boolean;
  lines: number;
  head: number;
  firstBroken?: { line: number; reason: string };
}

export interface Chart {
  start: number;
  bucketMs: number;
  buckets: number;
  series: Record<string, number[]>;
}

export interface Connection {
  provider: string;
  connection: string;
  isDefault: boolean;
  flow: string;
  fields: string[];
  createdAt: string;
  updatedAt: string;
  lastUsed: string | null;
  expiresAt: string | null;
  hosts: string[];
}

export interface Session {
  id: string;
  label: string | null;
  allow: Array<{ provider: string; connection?: string }> | null;
  createdAt: string;
  expiresAt: string;
}

export interface Held {
  id: string;
  profile: string;
  provider: string;
  connection: string;
  method: string;
  path: string;
  exe: string | null;
  pid: number | null;
  since: string;
  rule: number | null;
}

export interface PolicyRule {
  provider?: string;
  connection?: string;
  methods?: string[];
  path?: string;
  exe?: string[];
  action: 'allow' | 'deny' | 'approve';
  rate?: string;
}

export interface PolicyEntry {
  profile: string;
  policy: { default: 'allow' | 'deny' | 'approve'; rules: PolicyRule[] } | null;
  setAt?: string;
  setBy?: string;
  error?: string;
}

export interface PolicyCheck {
  provider: string | null;
  connection: string | null;
  applies: boolean;
  action: 'allow' | 'deny' | 'approve';
  rule: number | null;
  rate?: string;
  reason: string;
}

export interface DoctorCheck {
  id: string;
  title: string;
  status: 'pass' | 'fail' | 'warn' | 'skip';
  detail: string;
  fix?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

let csrf = '';
export function setCsrf(token: string): void {
  csrf = token;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-authsome-csrf'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json().catch(() => ({}))) as {
    error?: { code?: string; message?: string; hint?: string };
  };
  if (!res.ok) {
    const e = json.error ?? {};
    throw new ApiError(res.status, e.code ?? 'ERR_INTERNAL', e.message ?? `HTTP ${res.status}`, e.hint);
  }
  return json as T;
}

const qs = (o: Record<string, string | number | undefined>): string => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

export interface TimelineFilter {
  profile?: string;
  provider?: string;
  connection?: string;
  event?: string;
  node?: string;
}

export const api = {
  login: (token: string) => call<{ profile: string; expiresAt: string }>('POST', '/ui/api/login', { token }),
  logout: () => call<{ loggedOut: boolean }>('POST', '/ui/api/logout'),
  me: () => call<Me>('GET', '/ui/api/me'),
  audit: (f: TimelineFilter, limit: number, before?: number) =>
    call<{ records: AuditRecord[] }>('GET', `/ui/api/audit${qs({ ...f, limit, before })}`),
  facets: () => call<Facets>('GET', '/ui/api/audit/facets'),
  verify: () => call<Verify>('GET', '/ui/api/audit/verify'),
  chart: (minutes: number) => call<Chart>('GET', `/ui/api/chart${qs({ minutes })}`),
  connections: () => call<{ profile: string; connections: Connection[] }>('GET', '/ui/api/connections'),
  sessions: () => call<{ profile: string; sessions: Session[] }>('GET', '/ui/api/sessions'),
  revoke: (id: string) =>
    call<{ revoked: string[] }>('POST', `/ui/api/sessions/${encodeURIComponent(id)}/revoke`),
  approvals: () =>
    call<{ approvals: Held[]; canAnswer: boolean; timeoutS: number }>('GET', '/ui/api/approvals'),
  approve: (id: string, forText?: string) =>
    call<Held>(
      'POST',
      `/ui/api/approvals/${encodeURIComponent(id)}/approve`,
      forText ? { for: forText } : {},
    ),
  reject: (id: string) => call<Held>('POST', `/ui/api/approvals/${encodeURIComponent(id)}/reject`, {}),
  policies: () => call<{ policies: PolicyEntry[] }>('GET', '/ui/api/policies'),
  check: (profile: string, body: { method: string; url: string; connection?: string }) =>
    call<PolicyCheck>('POST', `/ui/api/policies/${encodeURIComponent(profile)}/check`, body),
  doctor: () => call<{ checks: DoctorCheck[] }>('GET', '/ui/api/doctor'),
};
