/** The live side of a description: a node's ztunnel, a waypoint's connection, a certificate's expiry. */
import type { LiveFacts, ProxyFact } from "./live.ts";
import type { CertificateSummary, ZtunnelSummary } from "./types.ts";

/** "in 23h", "3m ago": coarse, for terminals. */
export function relative(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const s = Math.round(Math.abs(ms) / 1000);
  const t = s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return ms >= 0 ? `in ${t}` : `${t} ago`;
}

/** The newest connection of a proxy (an overlapping restart shows two for a moment). */
export function proxyById(live: LiveFacts | undefined, id: string): ProxyFact | undefined {
  const all = live?.proxies?.filter((p) => p.id === id) ?? [];
  return all.sort((a, b) => b.connectedSince.localeCompare(a.connectedSince))[0];
}

export function ztunnelSummary(node: string, live: LiveFacts | undefined): ZtunnelSummary {
  const proxy = `ztunnel/${node}`;
  const base: ZtunnelSummary = {
    proxy,
    node,
    connected: null,
    ready: null,
    readyReasons: [],
    ackedVersion: null,
    latestVersion: null,
    synced: null,
    nack: null,
    remote: null,
    state: "not asked (configuration only)",
  };
  if (!live?.proxies) return base;
  const p = proxyById(live, proxy);
  base.latestVersion = live.latestVersion ?? null;
  if (!p) {
    return {
      ...base,
      connected: false,
      ready: false,
      synced: false,
      state: `NOT CONNECTED to the control plane: no ztunnel runs for node ${node}, or it cannot reach the control plane`,
    };
  }
  const r = live.readiness?.[proxy];
  const ready = r && "ready" in r ? r.ready : null;
  const synced = p.ackedVersion === live.latestVersion;
  const parts = [`connected from ${p.remote.replace(/:\d+$/, "")}`];
  parts.push(synced ? `synced (v${live.latestVersion})` : `acked ${p.ackedVersion === undefined ? "nothing" : `v${p.ackedVersion}`} of v${live.latestVersion}`);
  if (p.nack) parts.push(`NACKed v${p.nack.version}: ${p.nack.reason}`);
  if (ready === true) parts.push("ready");
  else if (ready === false) parts.push(`NOT READY${r && "reasons" in r && r.reasons.length ? ` (${r.reasons.join("; ")})` : ""}`);
  else if (r && "error" in r) parts.push(`readiness unknown (${r.error})`);
  return {
    ...base,
    connected: true,
    ready,
    readyReasons: r && "reasons" in r ? r.reasons : [],
    ackedVersion: p.ackedVersion ?? null,
    synced,
    nack: p.nack ? { version: p.nack.version, reason: p.nack.reason } : null,
    remote: p.remote,
    state: parts.join(", "),
  };
}

export function certificateSummary(identity: string, holder: string, live: LiveFacts | undefined): CertificateSummary {
  if (!live?.proxies) return { identity, issued: null, notAfter: null, expires: null, heldBy: null };
  // The holder's record first; any proxy's otherwise (the workload may have moved).
  const records = live.proxies.flatMap((p) => p.certificates.filter((c) => c.identity === identity).map((c) => ({ p, c })));
  const mine = records.filter((r) => r.p.id === holder);
  const pick = (mine.length ? mine : records).sort((a, b) => b.c.notAfter.localeCompare(a.c.notAfter))[0];
  if (!pick) return { identity, issued: false, notAfter: null, expires: null, heldBy: null };
  const expired = Date.parse(pick.c.notAfter) <= live.now;
  return {
    identity,
    issued: true,
    notAfter: pick.c.notAfter,
    expires: `${expired ? "EXPIRED " : ""}${relative(pick.c.notAfter, live.now)}`,
    heldBy: pick.p.id,
  };
}
