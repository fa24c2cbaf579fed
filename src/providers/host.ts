/**
 * Host and path rules shared by the schema (what a definition may declare) and the registry
 * (what a destination may match). Both sides use the same notion of a "plain DNS name", so a
 * name a definition could never declare can never match at request time either.
 */

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
// Two or more labels: single-label names (localhost, intranet hosts) never carry a secret.
const DNS_NAME = new RegExp(`^(?:${LABEL}\\.)+${LABEL}$`);

/** A lower-case, fully qualified DNS name: no IP literal, port, userinfo, trailing dot or wildcard. */
export function isPlainHostName(host: unknown): host is string {
  if (typeof host !== 'string' || host.length > 253 || !DNS_NAME.test(host)) return false;
  // An all-digit last label means an IPv4 literal (or a trick like "1.2.3.4" / "0x7f.1"); RFC 3696 section 2.
  return !/^[0-9]+$/.test(host.slice(host.lastIndexOf('.') + 1));
}

/** Why a declared host pattern is unacceptable, or undefined when it is fine. */
export function hostPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'must not be empty';
  if (pattern.length > 253) return 'must be at most 253 characters';
  if (pattern !== pattern.toLowerCase()) return 'must be lower-case';
  if (pattern.includes('@')) return "must not contain userinfo ('@')";
  if (/[/?#\\]/.test(pattern)) return 'must be a bare host name, not a URL';
  if (/^[^:[\]]+:[0-9]*$/.test(pattern)) return 'must not contain a port; put it in "port"';
  if (pattern.includes(':') || pattern.includes('[')) return 'must not be an IP literal';
  if (pattern.endsWith('.')) return 'must not end with a dot';
  const stars = pattern.split('*').length - 1;
  let name = pattern;
  if (stars > 0) {
    if (stars > 1 || !pattern.startsWith('*.'))
      return 'may hold only one wildcard, as the whole leftmost label ("*.example.com")';
    name = pattern.slice(2);
    if (!name.includes('.'))
      return 'a wildcard must sit under a domain of at least two labels ("*.example.com", not "*.com")';
  }
  if (/^[0-9.]+$/.test(name) || /\.[0-9]+$/.test(name)) return 'must not be an IP literal';
  if (!isPlainHostName(name)) {
    return "must be a DNS name of two or more labels, each 1-63 characters of a-z, 0-9 and '-' (not at either end)";
  }
  return undefined;
}

const PREFIX_CHARS = /^[A-Za-z0-9._~!$&'()*+,;=:@/-]+$/;

/** Why a declared path prefix is unacceptable, or undefined when it is fine. */
export function pathPrefixProblem(prefix: string): string | undefined {
  if (!prefix.startsWith('/')) return "must start with '/'";
  if (prefix.length > 256) return 'must be at most 256 characters';
  if (prefix === '/') return 'omit pathPrefix to cover the whole host';
  if (prefix.endsWith('/')) return 'must not end with \'/\' ("/v1" already covers "/v1/…")';
  if (/[?#]/.test(prefix)) return 'must be a path only, without query or fragment';
  if (prefix.includes('%')) return 'must not contain percent-encoding';
  if (!PREFIX_CHARS.test(prefix)) return 'may contain only unreserved and sub-delimiter URL characters';
  if (prefix.includes('//')) return 'must not contain an empty segment (//)';
  if (prefix.split('/').some((s) => s === '.' || s === '..')) return "must not contain '.' or '..' segments";
  return undefined;
}

// Dot segments (a segment that starts with `..`, or `.` alone or with a `;param`, which Tomcat and
// Spring resolve as `..`), backslashes, encoded dots/slashes/backslashes, and the encodings some
// servers decode again (`%25` double encoding, `%u` IIS escapes, overlong UTF-8 `%c0`/`%c1`, NUL) make
// "which prefix is this" depend on how the upstream normalises; such a path never matches a prefix
// rule (fail closed: it is forwarded without injection).
const AMBIGUOUS_PATH = /(?:^|\/)\.\.|(?:^|\/)\.(?:[/;]|$)|\\|%2e|%2f|%5c|%25|%u|%c0|%c1|%00/i;

/** The path part of an origin-form target if prefix rules may judge it, else undefined. */
export function prefixComparablePath(target: string): string | undefined {
  const q = target.search(/[?#]/);
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.startsWith('/') || AMBIGUOUS_PATH.test(path)) return undefined;
  return path;
}

/**
 * Tenant hosts. A wildcard rule (`*.myshopify.com`, `*.atlassian.net`) covers hosts that belong to
 * many customers; anyone can open a shop or a site there. A connection of such a provider is
 * therefore bound to the hosts of its own tenant (`login --host`), and is injected through the
 * wildcard only for those: otherwise an agent could send it to a shop of its own choosing.
 */
export function underWildcard(pattern: string, host: string): boolean {
  return pattern.startsWith('*.') && host.slice(host.indexOf('.') + 1) === pattern.slice(2);
}

/** Whether `host` reaches the provider only through a wildcard rule (no exact rule names it). */
export function viaWildcard(def: { hosts: ReadonlyArray<{ host: string }> }, host: string): boolean {
  return !def.hosts.some((r) => r.host === host) && def.hosts.some((r) => underWildcard(r.host, host));
}

/** The provider's wildcard host patterns: non-empty means its connections are bound to tenant hosts. */
export function tenantWildcards(def: { hosts: ReadonlyArray<{ host: string }> }): string[] {
  return def.hosts.filter((r) => r.host.startsWith('*.')).map((r) => r.host);
}

/** The provider's hosts that are not wildcards: a connection needs no binding for them. */
export function exactHosts(def: { hosts: ReadonlyArray<{ host: string }> }): string[] {
  return def.hosts.filter((r) => !r.host.startsWith('*.')).map((r) => r.host);
}

/** Why these bound hosts do not fit the provider (undefined when they do), for `login --host`. */
export function tenantHostsProblem(
  def: { name: string; hosts: ReadonlyArray<{ host: string }> },
  hosts: readonly string[] | undefined,
): string | undefined {
  const wild = tenantWildcards(def);
  if (wild.length === 0) {
    return hosts?.length
      ? `${def.name} has fixed hosts: --host is only for providers whose hosts belong to many tenants`
      : undefined;
  }
  // With exact hosts too (api.atlassian.com), a connection without --host is used on those alone.
  if (!hosts?.length)
    return exactHosts(def).length > 0
      ? undefined
      : `${def.name} covers ${wild.join(', ')}, hosts of many tenants: name yours with --host (e.g. --host yourname${wild[0]!.slice(1)})`;
  for (const h of hosts) {
    if (!isPlainHostName(h) || !wild.some((w) => underWildcard(w, h)))
      return `--host ${JSON.stringify(h.slice(0, 80))} is not one host under ${wild.join(' or ')} (lower-case, one label in place of the '*')`;
  }
  return undefined;
}
