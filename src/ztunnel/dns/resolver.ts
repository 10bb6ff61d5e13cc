/**
 * Addresses of ServiceEntry hosts with resolution DNS, for the ztunnel's outbound path: looked up through
 * the same upstream as the proxy, cached for the TTL of the answer (at least one second, so a TTL of 0
 * does not send a query per connection; at most an hour). A failed lookup is not cached.
 */
import { aRecordAddress, encodeQuery, parseMessage, RCODE, TYPE } from "../../dns/mod.ts";
import type { Upstream } from "./upstream.ts";

const MIN_TTL_S = 1;
const MAX_TTL_S = 3600;

export interface HostResolver {
  resolve(host: string): Promise<string[]>;
}

export class CachingResolver implements HostResolver {
  readonly #cache = new Map<string, { addresses: string[]; until: number }>();
  readonly #pending = new Map<string, Promise<string[]>>();
  #nextId = 1;

  constructor(readonly upstream: Upstream, readonly now: () => number = Date.now) {}

  resolve(host: string): Promise<string[]> {
    const key = host.toLowerCase();
    const hit = this.#cache.get(key);
    if (hit && hit.until > this.now()) return Promise.resolve(hit.addresses);
    let p = this.#pending.get(key);
    if (!p) {
      p = this.#lookup(key).finally(() => this.#pending.delete(key));
      this.#pending.set(key, p);
    }
    return p;
  }

  async #lookup(host: string): Promise<string[]> {
    this.#nextId = (this.#nextId % 0xffff) + 1;
    const { answer } = await this.upstream.exchange(encodeQuery(this.#nextId, host, TYPE.A));
    const m = parseMessage(answer);
    if (m.header.rcode !== RCODE.NOERROR) throw new Error(`DNS lookup of ${host} failed: rcode ${m.header.rcode}`);
    // CNAME chains arrive in the same answer: every A record in it belongs to the name asked.
    const records = m.answers.filter((r) => r.type === TYPE.A);
    const addresses = records.map((r) => aRecordAddress(r.data)).filter((a): a is string => a !== undefined);
    if (!addresses.length) throw new Error(`DNS lookup of ${host} returned no IPv4 address`);
    const ttl = Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, Math.min(...records.map((r) => r.ttl))));
    this.#cache.set(host, { addresses, until: this.now() + ttl * 1000 });
    return addresses;
  }
}
