/**
 * The operator's side of the admin API (`mesh proxy-config`): one authenticated HTTP call to a proxy's
 * localhost:15000. The credential is a token file given by the caller, or the proxy's local secret, found
 * by the address's port in this network namespace (see ./auth.ts).
 */
import { readFileSync } from "node:fs";
import { ErrorCode, MeshError, splitAddr } from "../core/mod.ts";
import { adminSecretDirs, findAdminSecret, netnsId } from "./auth.ts";

export interface AdminCallOptions {
  method?: "GET" | "POST";
  /** A file holding the credential (the secret, or for the control role an admin token). */
  tokenFile?: string;
  /** Where to look for local secrets (tests). */
  secretDirs?: string[];
  timeoutMs?: number;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** The bearer credential for the admin API at `addr`. */
export function adminCredential(addr: string, opts: Pick<AdminCallOptions, "tokenFile" | "secretDirs"> = {}): string {
  if (opts.tokenFile) {
    try {
      return readFileSync(opts.tokenFile, "utf8").trim();
    } catch (e) {
      throw new MeshError(ErrorCode.Usage, `Cannot read the admin credential "${opts.tokenFile}": ${(e as Error).message}`);
    }
  }
  const { hostname, port } = splitAddr(addr, 15000);
  const dirs = opts.secretDirs ?? adminSecretDirs();
  const found = isLoopback(hostname) ? findAdminSecret(port, dirs) : undefined;
  if (found) return found.secret;
  throw new MeshError(
    ErrorCode.TokenInvalid,
    isLoopback(hostname)
      ? `No admin secret for port ${port} in this network namespace (looked for ${dirs.map((d) => `${d}/${netnsId()}-${port}.secret`).join(" and ")}): run this as the proxy's user (root) in the proxy's network namespace, or give --admin-token-file`
      : `The admin API at ${addr} is not local: give its credential with --admin-token-file`,
  );
}

/** GET or POST `path` on the admin API at `addr` ("127.0.0.1:15000"); returns the status and parsed JSON. */
export async function adminCall(addr: string, path: string, opts: AdminCallOptions = {}): Promise<{ status: number; body: unknown }> {
  const credential = adminCredential(addr, opts);
  const { hostname, port } = splitAddr(addr, 15000);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  let r: Response;
  try {
    r = await fetch(`http://${host}:${port}${path}`, {
      method: opts.method ?? "GET",
      headers: { authorization: `Bearer ${credential}` },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
    });
  } catch (e) {
    throw new MeshError(ErrorCode.Unreachable, `Cannot reach the admin API at ${addr}: ${(e as Error).message} (is the proxy running in this network namespace?)`, { cause: e });
  }
  const text = await r.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = { error: text.slice(0, 500) };
  }
  if (r.status === 401) {
    const why = (body as { error?: string } | undefined)?.error ?? "refused";
    throw new MeshError(ErrorCode.TokenInvalid, `The admin API at ${addr} refused the credential: ${why}`);
  }
  return { status: r.status, body };
}
