/**
 * Bootstrap tokens: how a ztunnel, a waypoint or an operator first proves who it is to the control plane.
 * A token is a JWT (ES256) signed by a key that only the control plane holds (DATA_DIR/token-signing-key.pem,
 * mode 0600, created by whichever of `mesh run --role control` or `mesh token create` comes first), with
 * issuer "mesh-control", audience "mesh-bootstrap", an expiry, and claims that bind it to exactly one node,
 * one gateway, or the admin role. Tokens can be used until they expire (a ztunnel restarting reads the same
 * token file again).
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint, errors as joseErrors, exportJWK, importPKCS8, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { type Caller, describeCaller, parseGatewayRef } from "./caller.ts";
import { generateP256, privateKeyPem } from "./_keys.ts";
import { pathError } from "../model/mod.ts";

/** The `iss` of every bootstrap token. */
export const TOKEN_ISSUER = "mesh-control";
/** The `aud` of every bootstrap token. */
export const TOKEN_AUDIENCE = "mesh-bootstrap";
/** File name of the token-signing key inside the data directory. */
export const TOKEN_KEY_FILE = "token-signing-key.pem";

/** Where the token-signing key lives: a data directory, or anything with a `dataDir` (a CertificateAuthority). */
export type TokenKeySource = string | { readonly dataDir: string };

/** What a token is for: exactly one of node, gateway ("namespace/name") or admin. */
export interface BootstrapTokenRequest {
  node?: string;
  gateway?: string;
  admin?: boolean;
  /** Lifetime in seconds (the CLI's default is 24h). */
  ttlSeconds: number;
  /** Issue time in ms since the epoch (tests). Default Date.now(). */
  now?: number;
}

interface TokenKeys {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  kid: string;
}

const cache = new Map<string, Promise<TokenKeys>>();

function dirOf(src: TokenKeySource): string {
  return typeof src === "string" ? src : src.dataDir;
}

/** Loads the token-signing key of a data directory, creating it (mode 0600) on first use. */
async function keys(src: TokenKeySource): Promise<TokenKeys> {
  const dir = dirOf(src);
  let p = cache.get(dir);
  if (!p) {
    p = loadOrCreate(dir);
    cache.set(dir, p);
    p.catch(() => cache.delete(dir));
  }
  return await p;
}

async function loadOrCreate(dir: string): Promise<TokenKeys> {
  const path = join(dir, TOKEN_KEY_FILE);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = await generateP256();
    try {
      // "wx": if the control plane and `mesh token create` race on first start, one key wins and both use it.
      writeFileSync(path, await privateKeyPem(pair.privateKey), { mode: 0o600, flag: "wx" });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  let privateKey: CryptoKey;
  try {
    privateKey = (await importPKCS8(readFileSync(path, "utf8"), "ES256", { extractable: true })) as CryptoKey;
  } catch (e) {
    throw new MeshError(ErrorCode.TokenInvalid, `Cannot read the token-signing key ${path}: ${(e as Error).message}`);
  }
  const { d: _d, ...pub } = await exportJWK(privateKey);
  const publicKey = (await crypto.subtle.importKey("jwk", pub, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"])) as CryptoKey;
  return { privateKey, publicKey, kid: await calculateJwkThumbprint(pub) };
}

/**
 * Creates a bootstrap token for one node, one gateway, or an admin.
 * @throws MeshError (MESH_USAGE) unless exactly one of node, gateway, admin is given, or the ttl is not positive.
 * @example
 * const token = await createBootstrapToken("/var/lib/mesh", { node: "worker-a", ttlSeconds: 86400 });
 */
export async function createBootstrapToken(src: TokenKeySource, req: BootstrapTokenRequest): Promise<string> {
  const caller = callerOfRequest(req);
  if (!(req.ttlSeconds > 0) || !Number.isFinite(req.ttlSeconds)) {
    throw new MeshError(ErrorCode.Usage, `Token lifetime must be a positive number of seconds, not ${req.ttlSeconds}`);
  }
  const k = await keys(src);
  const iat = Math.floor((req.now ?? Date.now()) / 1000);
  const claims: JWTPayload & Record<string, unknown> = { kind: caller.kind };
  if (caller.kind === "node") claims.node = caller.node;
  if (caller.kind === "gateway") claims.gateway = `${caller.namespace}/${caller.name}`;
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: k.kid, typ: "JWT" })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(describeCaller(caller))
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.ceil(req.ttlSeconds))
    .setJti(crypto.randomUUID())
    .sign(k.privateKey);
}

/**
 * Verifies a bootstrap token and says whom it names.
 * @param now time in ms since the epoch to check expiry at (tests); default now.
 * @throws MeshError (MESH_TOKEN_INVALID) with the reason: expired, bad signature, wrong issuer or audience,
 * malformed, or claims that do not name exactly one caller.
 */
export async function verifyBootstrapToken(src: TokenKeySource, token: string, now?: number): Promise<Caller> {
  const k = await keys(src);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token.trim(), k.publicKey, {
      algorithms: ["ES256"],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
      currentDate: now !== undefined ? new Date(now) : undefined,
      requiredClaims: ["exp", "sub"],
    }));
  } catch (e) {
    throw new MeshError(ErrorCode.TokenInvalid, `Bootstrap token refused: ${reason(e)}`, { cause: e });
  }
  const p = payload as Record<string, unknown>;
  try {
    const caller = p.kind === "node"
      ? callerOfRequest({ node: String(p.node ?? ""), ttlSeconds: 1 })
      : p.kind === "gateway"
      ? callerOfRequest({ gateway: String(p.gateway ?? ""), ttlSeconds: 1 })
      : p.kind === "admin"
      ? callerOfRequest({ admin: true, ttlSeconds: 1 })
      : undefined;
    if (!caller || describeCaller(caller) !== p.sub) throw new Error(`unknown kind "${String(p.kind)}"`);
    return caller;
  } catch (e) {
    throw new MeshError(ErrorCode.TokenInvalid, `Bootstrap token refused: its claims do not name one node, gateway or admin (${(e as Error).message})`);
  }
}

function reason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) {
    const exp = (e.payload as JWTPayload).exp;
    return `expired${exp ? ` at ${new Date(exp * 1000).toISOString()}` : ""}: create a new one with "mesh token create"`;
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
    return "bad signature: it was not signed by this control plane's token key (or was altered)";
  }
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === "aud") return `wrong audience: expected "${TOKEN_AUDIENCE}"`;
    if (e.claim === "iss") return `wrong issuer: expected "${TOKEN_ISSUER}"`;
    if (e.claim === "nbf" || e.claim === "iat") return `not valid yet (${e.message})`;
    return `claim "${e.claim}" invalid: ${e.message}`;
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return "wrong algorithm: only ES256 is accepted";
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return `malformed token: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

function callerOfRequest(req: BootstrapTokenRequest): Caller {
  const given = [req.node !== undefined, req.gateway !== undefined, req.admin === true].filter(Boolean).length;
  if (given !== 1) throw new MeshError(ErrorCode.Usage, "Give exactly one of --node NAME, --gateway NAMESPACE/NAME or --admin");
  if (req.node !== undefined) {
    const err = req.node === "" ? "it is empty" : req.node.includes("/") ? "it contains '/'" : pathError("/" + req.node);
    if (err) throw new MeshError(ErrorCode.Usage, `Invalid node name "${req.node}": ${err}`);
    return { kind: "node", node: req.node };
  }
  if (req.gateway !== undefined) return parseGatewayRef(req.gateway);
  return { kind: "admin" };
}
