/**
 * IP addresses and CIDR blocks (IPv4 and IPv6) for ipBlocks, remoteIpBlocks and the source.ip,
 * remote.ip and destination.ip conditions. A single address is a full-length block. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d, as some socket APIs report IPv4 peers) compare as IPv4.
 */

/** Parsed address: 4 or 16 bytes. */
export type IpBytes = Uint8Array;

export function parseIp(text: string): IpBytes | undefined {
  const s = text.trim();
  if (s.includes(":")) return unmap(parseIpv6(s));
  return parseIpv4(s);
}

function parseIpv4(s: string): IpBytes | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(input: string): IpBytes | undefined {
  let s = input;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    all = [...head, ...new Array(fill).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function unmap(b: IpBytes | undefined): IpBytes | undefined {
  if (!b || b.length !== 16) return b;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return b;
  if (b[10] !== 0xff || b[11] !== 0xff) return b;
  return b.slice(12);
}

export interface Cidr {
  bytes: IpBytes;
  prefix: number;
}

/** "10.0.0.0/8", "fd00::/8" or a single address. Host bits are ignored ("127.0.0.1/24" is 127.0.0.0/24, as in ztunnel). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const addr = parseIp(slash >= 0 ? text.slice(0, slash) : text);
  if (!addr) return undefined;
  const max = addr.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    // An IPv4-mapped IPv6 block was unmapped to 4 bytes: shift its prefix accordingly.
    if (addr.length === 4 && text.includes(":")) prefix -= 96;
    if (prefix < 0 || prefix > max) return undefined;
  }
  return { bytes: addr, prefix };
}

export function cidrContains(cidr: Cidr, ip: IpBytes): boolean {
  if (cidr.bytes.length !== ip.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++) {
    const take = Math.min(8, bits);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((cidr.bytes[i] & mask) !== (ip[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

/**
 * Is `ip` inside the block `block`? `undefined` when `block` itself is not an address or CIDR block: a
 * configuration error, which the policy engine treats fail closed (a DENY rule matches, an ALLOW rule
 * does not), never as "no match". `false` when `ip` is absent or not an address.
 */
export function ipInBlock(block: string, ip: string | undefined): boolean | undefined {
  const c = cachedCidr(block);
  if (c === undefined) return undefined;
  if (ip === undefined) return false;
  const a = parseIp(ip);
  return a !== undefined && cidrContains(c, a);
}

// Blocks come from configuration (a small set) and are checked on every connection: parse each once.
const cidrs = new Map<string, Cidr | null>();

function cachedCidr(block: string): Cidr | undefined {
  let c = cidrs.get(block);
  if (c === undefined) {
    c = parseCidr(block) ?? null;
    if (cidrs.size < 4096) cidrs.set(block, c);
  }
  return c ?? undefined;
}
