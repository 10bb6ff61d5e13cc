/**
 * Automatic VIPs for ServiceEntry hosts written without `addresses`, from 240.240.0.0/16 as Istio
 * allocates them (a reserved range no real destination uses, so a connection to one can only mean the
 * host). Pure and deterministic: the address of a host follows from the host name (a hash), and a
 * collision moves the later host (in sorted order) to the next free address, so the same set of hosts
 * always gets the same addresses, whoever computes them and in whatever order the objects were written.
 */

export const VIP_RANGE = "240.240.0.0/16";
const SIZE = 1 << 16;

/** FNV-1a, 32 bits: small, stable across runtimes, good enough spread for host names. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function addressOf(slot: number): string {
  return `240.240.${slot >> 8}.${slot & 0xff}`;
}

/** Is `ip` inside the automatic VIP range? */
export function isAutoVip(ip: string): boolean {
  return ip.startsWith("240.240.") && /^240\.240\.\d{1,3}\.\d{1,3}$/.test(ip);
}

/**
 * One VIP per host (lowercased; duplicates share one). Slots .0 and .255 of each /24 are skipped so no
 * VIP looks like a network or broadcast address.
 */
export function allocateVips(hosts: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<number>();
  const sorted = [...new Set(hosts.map((h) => h.toLowerCase()))].sort();
  for (const host of sorted) {
    let slot = fnv1a(host) % SIZE;
    for (let tries = 0; tries < SIZE; tries++, slot = (slot + 1) % SIZE) {
      const last = slot & 0xff;
      if (last === 0 || last === 255 || used.has(slot)) continue;
      used.add(slot);
      out.set(host, addressOf(slot));
      break;
    }
  }
  return out;
}
