/**
 * Verification keys for RequestAuthentication rules (the I/O src/policy leaves to its caller): an inline
 * `jwks` is parsed once per configuration; a `jwksUri` is fetched with jose's remote key set: a timeout
 * on every fetch, the set cached (refetched after `cacheMaxAgeMs`), and fetched again at once when a
 * token names a key id the cached set lacks (at most once per `cooldownMs`, so bad tokens cannot make
 * the waypoint hammer the issuer). A fetch that fails makes such tokens fail (401), never pass.
 */
import { createRemoteJWKSet, type JWTVerifyGetKey } from "jose";
import { logger } from "../core/mod.ts";
import type { JwtRule } from "../model/mod.ts";
import { inlineKeySet, type KeyResolver } from "../policy/mod.ts";

const log = logger("waypoint");

export interface JwksOptions {
  /** Per fetch (default 5 s). */
  timeoutMs?: number;
  /** A fetched set is used for this long before it is fetched again (default 10 minutes). */
  cacheMaxAgeMs?: number;
  /** Least time between two fetches for an unknown key id (default 30 s). */
  cooldownMs?: number;
}

type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

export class JwksKeys {
  #o: Required<JwksOptions>;
  #inline = new WeakMap<JwtRule, JWTVerifyGetKey>();
  #remote = new Map<string, RemoteSet>();

  constructor(opts: JwksOptions = {}) {
    this.#o = {
      timeoutMs: opts.timeoutMs ?? 5_000,
      cacheMaxAgeMs: opts.cacheMaxAgeMs ?? 10 * 60_000,
      cooldownMs: opts.cooldownMs ?? 30_000,
    };
  }

  /** The KeyResolver src/policy authenticate() calls per rule. */
  readonly resolve: KeyResolver = (rule) => {
    if (rule.jwks) {
      let k = this.#inline.get(rule);
      if (!k) {
        k = inlineKeySet(rule);
        this.#inline.set(rule, k);
      }
      return k;
    }
    if (rule.jwksUri) return this.#remoteSet(rule.jwksUri);
    throw new Error(`JWT rule for issuer "${rule.issuer}" has neither jwks nor jwksUri`);
  };

  /**
   * A new configuration: fetch the key sets of its rules now, so the first request does not wait, and
   * forget sets no rule uses any more.
   */
  configure(rules: JwtRule[]): void {
    const uris = new Set(rules.flatMap((r) => (r.jwks || !r.jwksUri ? [] : [r.jwksUri])));
    for (const uri of [...this.#remote.keys()]) if (!uris.has(uri)) this.#remote.delete(uri);
    for (const uri of uris) {
      const set = this.#remoteSet(uri);
      if (!set.fresh && !set.reloading) {
        set.reload().catch((e) => log.warn("JWKS fetch failed (tokens of this issuer are refused until it succeeds)", { jwksUri: uri, error: (e as Error).message }));
      }
    }
  }

  #remoteSet(uri: string): RemoteSet {
    let s = this.#remote.get(uri);
    if (!s) {
      s = createRemoteJWKSet(new URL(uri), {
        timeoutDuration: this.#o.timeoutMs,
        cacheMaxAge: this.#o.cacheMaxAgeMs,
        cooldownDuration: this.#o.cooldownMs,
      });
      this.#remote.set(uri, s);
    }
    return s;
  }
}
