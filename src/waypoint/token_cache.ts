/**
 * The waypoint's cache of tokens whose RS256/ES256 signature already verified (src/policy VerifiedTokens):
 * clients send the same bearer token on every request, and the signature check is most of the cost of
 * RequestAuthentication. Only the signature is remembered: expiry, not-before and audiences are checked on
 * every request by src/policy. Entries are per rule object (a new configuration starts empty), live at
 * most `ttlMs` (so a key removed from an issuer's JWKS stops being honoured within that time), and each
 * rule keeps at most `maxPerRule` tokens.
 */
import type { JWTPayload } from "jose";
import type { JwtRule } from "../model/mod.ts";
import type { VerifiedTokens } from "../policy/mod.ts";

interface Entry {
  payload: JWTPayload;
  until: number;
}

export class TokenCache implements VerifiedTokens {
  #byRule = new WeakMap<JwtRule, Map<string, Entry>>();
  #ttlMs: number;
  #max: number;
  #clock: () => number;
  hits = 0;
  misses = 0;

  constructor(opts: { ttlMs?: number; maxPerRule?: number; clock?: () => number } = {}) {
    this.#ttlMs = opts.ttlMs ?? 60_000;
    this.#max = opts.maxPerRule ?? 4096;
    this.#clock = opts.clock ?? Date.now;
  }

  get(rule: JwtRule, token: string): JWTPayload | undefined {
    const m = this.#byRule.get(rule);
    const e = m?.get(token);
    if (!e) {
      this.misses++;
      return undefined;
    }
    if (e.until <= this.#clock()) {
      m!.delete(token);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return e.payload;
  }

  set(rule: JwtRule, token: string, payload: JWTPayload): void {
    let m = this.#byRule.get(rule);
    if (!m) this.#byRule.set(rule, (m = new Map()));
    // Oldest first (insertion order): drop it when full.
    if (m.size >= this.#max) m.delete(m.keys().next().value!);
    m.set(token, { payload, until: this.#clock() + this.#ttlMs });
  }
}
