/**
 * Addresses as text: `host:port` with IPv6 hosts in brackets (RFC 3986 authority), listen addresses with
 * a default port, and the `for=` node of the Forwarded header (RFC 7239) the proxies use to carry a
 * client's address through a tunnel. One parser for every caller: a proxy that splits an address one way
 * and a policy check that splits it another would disagree about who is asking. Pure.
 */

/** A host and a port. `host` has no brackets (an IPv6 literal is bare). */
export interface HostPort {
  host: string;
  port: number;
}

/** The parts of `host[:port]`, leniently: what callers of differing strictness build on. */
export interface HostParts {
  /** The host without brackets; the whole text when it cannot be split (`[` without `]`). */
  host: string;
  /** The text after the port colon, unchecked (may be empty or not a number); undefined: no port colon. */
  port?: string;
  /** The host was written in brackets (`[::1]`, `[::1]:80`); text after `]` other than `:port` is ignored. */
  bracketed: boolean;
}

const DIGITS = /^[0-9]+$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;

/**
 * Splits `host:port`, `[v6]:port`, `[v6]`, `host` or a bare IPv6 literal (two or more colons without
 * brackets: all host, no port). Never fails; the strict parsers below check what it returns.
 *
 * @example
 * splitHost("[fd00::1]:8080"); // { host: "fd00::1", port: "8080", bracketed: true }
 * splitHost("fd00::1");        // { host: "fd00::1", bracketed: false }
 */
export function splitHost(text: string): HostParts {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return { host: text, bracketed: false };
    const host = text.slice(1, close);
    return text[close + 1] === ":" ? { host, port: text.slice(close + 2), bracketed: true } : { host, bracketed: true };
  }
  const colon = text.indexOf(":");
  if (colon < 0 || text.indexOf(":", colon + 1) >= 0) return { host: text, bracketed: false };
  return { host: text.slice(0, colon), port: text.slice(colon + 1), bracketed: false };
}

/** Text after `]` that is not `:port` (`[::1]x`): splitHost ignores it, strict callers refuse it. */
function trailing(text: string, s: HostParts): boolean {
  return s.bracketed && text.length !== s.host.length + 2 + (s.port === undefined ? 0 : s.port.length + 1);
}

function portNumber(text: string): number | undefined {
  if (text.length > 5 || !DIGITS.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Strictly parses `host:port` or `[v6]:port` (an IPv6 host must be bracketed; the port is 1-65535).
 * With `defaultPort`, the port may be left out (`host`, `[v6]`). Undefined when it is not such an address.
 *
 * @example
 * parseHostPort("10.0.0.1:15008");        // { host: "10.0.0.1", port: 15008 }
 * parseHostPort("[::1]", 15012);          // { host: "::1", port: 15012 }
 * parseHostPort("fd00::1:80");            // undefined (bracket IPv6)
 */
export function parseHostPort(text: string, defaultPort?: number): HostPort | undefined {
  const s = splitHost(text);
  if (s.host.length === 0 || (!s.bracketed && s.host.includes(":")) || trailing(text, s)) return undefined;
  if (s.port === undefined) return defaultPort === undefined ? undefined : { host: s.host, port: defaultPort };
  const port = portNumber(s.port);
  return port === undefined ? undefined : { host: s.host, port };
}

/**
 * Parses an address authority: `a.b.c.d:port` or `[v6]:port`, no hostname (the CONNECT target of a
 * tunnel names an address). The IP is lower-cased, as the model stores addresses.
 */
export function parseIpPort(text: string): { ip: string; port: number } | undefined {
  const a = parseHostPort(text);
  if (!a) return undefined;
  const bracketed = text.startsWith("[");
  if (bracketed ? !IPV6_CHARS.test(a.host) : !IPV4.test(a.host)) return undefined;
  return { ip: a.host.toLowerCase(), port: a.port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host of `ip:port` or `[v6]:port` (a socket's peer address); the text unchanged when it has no port. */
export function hostOf(address: string): string {
  const s = splitHost(address);
  return s.host.length > 0 && s.port !== undefined && DIGITS.test(s.port) ? s.host : address;
}

/**
 * A listen address (`--metrics-addr`, `--listen`): `host:port`, `[v6]:port`, `host`, a bare IPv6 literal,
 * or `:port`. A missing host is every IPv4 address; a missing port is `defaultPort`. Never fails: a
 * malformed address is returned as the host, for the bind to reject with the system's own error.
 */
export function splitAddr(addr: string, defaultPort: number): { hostname: string; port: number } {
  const s = splitHost(addr);
  const port = s.port !== undefined && DIGITS.test(s.port) ? Number(s.port) : undefined;
  const hostname = (port === undefined && s.port !== undefined) || trailing(addr, s) ? addr : s.host;
  return { hostname: hostname || "0.0.0.0", port: port ?? defaultPort };
}

/**
 * The Forwarded header (RFC 7239) a proxy sends ahead of a client's stream: `for=` names the client
 * (quoted, since an address with a port or an IPv6 literal is not a token), `host=` the Service it addressed.
 *
 * @example
 * formatForwarded({ ip: "fd00::1", port: 5000 }, "api.shop.svc.cluster.local");
 * // 'for="[fd00::1]:5000";host=api.shop.svc.cluster.local'
 */
export function formatForwarded(client: { ip: string; port?: number }, host?: string): string {
  const node = client.port === undefined ? (client.ip.includes(":") ? `[${client.ip}]` : client.ip) : formatHostPort(client.ip, client.port);
  return `for="${node}"${host ? `;host=${host}` : ""}`;
}

/**
 * The address in the first `for=` of a Forwarded header, without port or brackets: `for="10.0.0.1:1234"`,
 * `for=10.0.0.1`, `for="[::1]:80"`. Undefined when there is none. Who may be believed is not decided here.
 */
export function forwardedFor(header: string | undefined): string | undefined {
  const m = header?.match(/(?:^|[;,\s])for=("?)([^";,]+)\1/i);
  if (!m) return undefined;
  const v = m[2]!.trim();
  const bracket = v.match(/^\[([^\]]+)\](?::\d+)?$/);
  return bracket ? bracket[1] : v.replace(/:\d+$/, "");
}

/** The `host=` of a Forwarded header (the Service the client addressed), or undefined. */
export function forwardedHost(header: string | undefined): string | undefined {
  return header?.match(/(?:^|;)\s*host=("?)([^";,]+)\1/i)?.[2];
}
