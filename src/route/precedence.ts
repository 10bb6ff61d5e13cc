/**
 * Match precedence across every rule of every applicable route, as the Gateway API HTTPRoute reference
 * orders it (continuing on ties):
 *  1. the route hostname: most characters in a matching exact hostname, then in any matching hostname;
 *  2. an Exact path match;
 *  3. a PathPrefix match with the most characters;
 *  4. a method match;
 *  5. the most header matches;
 *  6. the most query parameter matches;
 *  7. across routes: the oldest creationTimestamp, then "{namespace}/{name}" alphabetically;
 *  8. within a route: the first rule, then its first match.
 * RegularExpression path precedence is implementation-specific; like Istio we rank it after PathPrefix
 * (Exact > PathPrefix > RegularExpression) and then by pattern length.
 */
import type { HttpRoute, HttpRouteMatch, HttpRouteRule } from "../model/mod.ts";
import { DEFAULT_PATH, hostnameRank } from "./match.ts";

/** One match of one rule of one route: the unit precedence orders. */
export interface RouteCandidate {
  route: HttpRoute;
  rule: HttpRouteRule;
  ruleIndex: number;
  matchIndex: number;
  /** The match with its defaults filled in (path PathPrefix "/"). */
  match: HttpRouteMatch;
}

const PATH_RANK: Record<string, number> = { Exact: 3, PathPrefix: 2, RegularExpression: 1 };

function createdMs(r: HttpRoute): number {
  const t = r.creationTimestamp === undefined ? NaN : Date.parse(r.creationTimestamp);
  // Routes without a timestamp (static files) sort after dated ones and tie among themselves.
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

function compareCandidates(a: RouteCandidate, b: RouteCandidate): number {
  const pa = a.match.path!, pb = b.match.path!;
  const rank = (PATH_RANK[pb.type] ?? 0) - (PATH_RANK[pa.type] ?? 0);
  if (rank !== 0) return rank;
  if (pa.value.length !== pb.value.length) return pb.value.length - pa.value.length;
  const ma = a.match.method !== undefined, mb = b.match.method !== undefined;
  if (ma !== mb) return ma ? -1 : 1;
  const ha = a.match.headers?.length ?? 0, hb = b.match.headers?.length ?? 0;
  if (ha !== hb) return hb - ha;
  const qa = a.match.queryParams?.length ?? 0, qb = b.match.queryParams?.length ?? 0;
  if (qa !== qb) return qb - qa;
  if (a.route !== b.route) {
    const ca = createdMs(a.route), cb = createdMs(b.route);
    if (ca !== cb) return ca < cb ? -1 : 1;
    const ka = `${a.route.namespace}/${a.route.name}`, kb = `${b.route.namespace}/${b.route.name}`;
    if (ka !== kb) return ka < kb ? -1 : 1;
  }
  if (a.ruleIndex !== b.ruleIndex) return a.ruleIndex - b.ruleIndex;
  return a.matchIndex - b.matchIndex;
}

/** Every (route, rule, match) of `routes`, ordered by criteria 2-8 (hostnames are per request). */
export function orderCandidates(routes: HttpRoute[]): RouteCandidate[] {
  const out: RouteCandidate[] = [];
  for (const route of routes) {
    route.rules.forEach((rule, ruleIndex) => {
      const matches = rule.matches.length > 0 ? rule.matches : [{}];
      matches.forEach((m, matchIndex) => {
        out.push({ route, rule, ruleIndex, matchIndex, match: { ...m, path: m.path ?? DEFAULT_PATH } });
      });
    });
  }
  return out.sort(compareCandidates);
}

/**
 * The candidates whose route covers `hostname`, hostname criterion applied first. `ordered` must come
 * from orderCandidates; the sort is stable, so the other criteria keep their order within a hostname rank.
 */
export function candidatesForHost(ordered: RouteCandidate[], hostname: string): RouteCandidate[] {
  if (!ordered.some((c) => c.route.hostnames.length > 0)) return ordered;
  const ranks = new Map<HttpRoute, [number, number] | undefined>();
  const rankOf = (r: HttpRoute) => {
    if (!ranks.has(r)) ranks.set(r, hostnameRank(r.hostnames, hostname));
    return ranks.get(r);
  };
  const kept = ordered.filter((c) => rankOf(c.route) !== undefined);
  return kept.sort((a, b) => {
    const ra = rankOf(a.route)!, rb = rankOf(b.route)!;
    return rb[0] - ra[0] || rb[1] - ra[1];
  });
}
