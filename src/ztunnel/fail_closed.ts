/**
 * Fail closed: a ztunnel that is not serving (starting, or none running) leaves the capture rules of its
 * network namespace in place, so captured traffic is refused rather than sent in plaintext. Readiness says
 * when that is the case, whoever installed the rules (this process, or a predecessor that stopped).
 */
import { OWNED_CHAINS, readChain, type Runner } from "./capture/mod.ts";

/** True when a capture chain of this mesh holds rules in this namespace (IPv4; IPv6 mirrors it). */
export function captureInPlace(run: Runner): boolean {
  return OWNED_CHAINS.some((chain) => (readChain(run, 4, chain)?.length ?? 0) > 0);
}
