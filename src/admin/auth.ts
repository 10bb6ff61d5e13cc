/**
 * Authentication of the admin API (15000: /config_dump, /certs, /logging, the control role's root
 * rotation). The port listens on localhost, but a local port is not a credential: any process of any user
 * on the host (or in the pod's network namespace) could change log levels or rotate roots. So every
 * request must carry `Authorization: Bearer <credential>`, where the credential is:
 *
 * - the process's local admin secret: 32 random bytes, created on first start in a file readable only by
 *   its owner (mode 0600, directory 0700), named after the network namespace and the port the admin API
 *   listens on: `/run/mesh/admin/<netns inode>-<port>.secret`. Whoever can read that file on this host
 *   (root, or the user running the proxy) is an operator of this proxy; `mesh proxy-config --admin ADDR`
 *   finds it by itself. A process starting while another serves the same namespace and port reuses it,
 *   so an overlapping restart (SO_REUSEPORT: the kernel spreads requests over both processes) answers one
 *   credential; the last process on the port removes it when it stops. /run is a tmpfs: a reboot
 *   forgets it.
 * - or, when the role can verify them (the control role holds the token-signing key), an admin token from
 *   `mesh token create --admin`.
 *
 * /healthz/ready (15021) and /metrics (15020) stay open on their own ports.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { logger, writeFileAtomic } from "../core/mod.ts";

const log = logger("admin");

export interface AdminAuthOptions {
  /** Where the secret file lives (default: /run/mesh/admin, or a per-user directory under the temp dir when /run is not writable). */
  secretDir?: string;
  /** Verifies a bearer token that is not the local secret (the control role: admin tokens). */
  verifyToken?: (token: string) => Promise<boolean>;
}

export type AdminCheck = { ok: true; by: "secret" | "token" } | { ok: false; status: 401; error: string };

/** Directories searched for admin secrets, in order. */
export function adminSecretDirs(): string[] {
  return ["/run/mesh/admin", join(tmpdir(), `mesh-admin-${process.getuid?.() ?? "user"}`)];
}

/** The kernel's id of this process's network namespace ("4026531840"), or "host" where there is none. */
export function netnsId(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))?.[1] ?? "host";
  } catch {
    return "host";
  }
}

export function adminSecretFile(dir: string, port: number, netns = netnsId()): string {
  return join(dir, `${netns}-${port}.secret`);
}

const SECRET_RE = /^[A-Za-z0-9_-]{43,}$/;

function myUid(): number | undefined {
  return process.getuid?.();
}

function mode(m: number): string {
  return `0${(m & 0o777).toString(8)}`;
}

/**
 * Why `dir` cannot hold an admin secret, or "" when it can: a real directory (not a symbolic link) owned
 * by this process's user with mode 0700. In the temp-dir fallback another local user can create the
 * directory first (or a link in its place): whoever owns it could put their own secret there, or read ours.
 */
function untrustedDir(dir: string): string {
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    return `cannot be examined (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  if (st.isSymbolicLink()) return "is a symbolic link";
  if (!st.isDirectory()) return "is not a directory";
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid) return `belongs to uid ${st.uid}, not to this process's uid ${uid}`;
  if ((st.mode & 0o777) !== 0o700) return `has mode ${mode(st.mode)}, not 0700`;
  return "";
}

/**
 * The secret in `path`, read only if the file can be trusted: a regular file (a symbolic link is not
 * followed), owned by this process's user, mode 0600. Its directory is checked by the caller.
 * `problem` says why a present file was not trusted.
 */
function readTrustedSecret(path: string): { secret?: string; problem?: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return {};
    return { problem: code === "ELOOP" ? "is a symbolic link" : `cannot be read (${code ?? (e as Error).message})` };
  }
  try {
    // Checked on the open file: what is read is what was examined.
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: "is not a regular file" };
    const uid = myUid();
    if (uid !== undefined && st.uid !== uid) return { problem: `belongs to uid ${st.uid}, not to this process's uid ${uid}` };
    if ((st.mode & 0o777) !== 0o600) return { problem: `has mode ${mode(st.mode)}, not 0600` };
    const text = readFileSync(fd, "utf8").trim();
    return SECRET_RE.test(text) ? { secret: text } : { problem: "does not hold a secret" };
  } catch (e) {
    return { problem: `cannot be read (${(e as Error).message})` };
  } finally {
    closeSync(fd);
  }
}

/** The secret in `path` if both its directory and the file can be trusted. */
function readSecret(path: string): string | undefined {
  if (untrustedDir(dirname(path))) return undefined;
  return readTrustedSecret(path).secret;
}

/**
 * Makes `dir` ready to hold a secret: created 0700 if missing; ours but with another mode, set to 0700.
 * @throws Error when it belongs to someone else or is not a real directory: it is never used then.
 */
function prepareDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let problem = untrustedDir(dir);
  if (problem.startsWith("has mode")) {
    // Ours (owner and type were fine): a file someone else put there meanwhile is refused one by one.
    log.warn("admin secret directory had a loose mode: set to 0700", { dir, problem });
    chmodSync(dir, 0o700);
    problem = untrustedDir(dir);
  }
  if (problem) {
    log.error("admin secret directory refused: it is not this user's private directory", { dir, problem });
    throw new Error(`the directory ${dir} ${problem}`);
  }
}

/**
 * The secret of the admin API on `port` in this network namespace: the existing one, or a new one
 * (created atomically, so two processes starting together agree on one). Returns its file too.
 */
export function ensureAdminSecret(port: number, dirs: string[] = adminSecretDirs()): { secret: string; path: string } {
  let lastError: unknown;
  for (const dir of dirs) {
    const path = adminSecretFile(dir, port);
    try {
      // The directory first: nothing in it is read or written unless it is ours alone.
      prepareDir(dir);
      const existing = readTrustedSecret(path);
      if (existing.secret) return { secret: existing.secret, path };
      if (existing.problem) log.warn("admin secret file not trusted: replaced", { path, problem: existing.problem });
      const secret = randomBytes(32).toString("base64url");
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
      writeFileSync(tmp, secret + "\n", { mode: 0o600, flag: "wx" }); // never through a planted file or link
      try {
        unlinkSync(path); // an untrusted, unreadable or damaged leftover
      } catch { /* none */ }
      try {
        linkSync(tmp, path); // fails if another process created it meanwhile: then use theirs
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      } finally {
        unlinkSync(tmp);
      }
      const agreed = readSecret(path);
      if (agreed) return { secret: agreed, path };
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`Cannot create the admin API secret in ${dirs.join(" or ")}: ${(lastError as Error)?.message ?? "unknown error"}`);
}

/** Writes the secret back if its file disappeared (a predecessor on the same port removed it on exit). */
export function restoreSecret(s: { secret: string; path: string }): void {
  if (readSecret(s.path) !== undefined) return;
  try {
    // The directory may have been removed and made again by someone else meanwhile (the temp dir).
    prepareDir(dirname(s.path));
    writeFileAtomic(s.path, s.secret + "\n");
  } catch { /* next round */ }
}

/** The secret a local caller uses for the admin API on `port` of this network namespace, if readable. */
export function findAdminSecret(port: number, dirs: string[] = adminSecretDirs()): { secret: string; path: string } | undefined {
  for (const dir of dirs) {
    const path = adminSecretFile(dir, port);
    const secret = readSecret(path);
    if (secret) return { secret, path };
  }
  return undefined;
}

/**
 * Removes the admin secrets of the given network namespaces (by inode, as `netnsId` names them), with any
 * temporary files a creation left, and nothing else. A proxy killed with SIGKILL cannot remove its own;
 * whoever deletes its namespace does it, while no other namespace can hold that inode yet.
 * @returns the files removed
 */
export function removeAdminSecrets(netnsIds: Iterable<string | number>, dirs: string[] = adminSecretDirs()): string[] {
  const ids = new Set([...netnsIds].map(String));
  const removed: string[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = /^([0-9]+|host)-[0-9]+\.secret(?:\..*)?$/.exec(e);
      if (!m || !ids.has(m[1]!)) continue;
      try {
        unlinkSync(join(dir, e));
        removed.push(join(dir, e));
      } catch { /* gone meanwhile */ }
    }
  }
  return removed;
}

/** Checks each request's bearer credential against the local secret (constant time), then the token verifier. */
export class AdminGuard {
  readonly #secret: Buffer;
  readonly #verify?: (token: string) => Promise<boolean>;
  readonly secretPath: string;

  constructor(secret: { secret: string; path: string }, verifyToken?: (token: string) => Promise<boolean>) {
    this.#secret = Buffer.from(secret.secret);
    this.secretPath = secret.path;
    this.#verify = verifyToken;
  }

  async check(req: Request): Promise<AdminCheck> {
    const h = req.headers.get("authorization");
    const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
    if (!m) {
      return { ok: false, status: 401, error: `The admin API needs a credential: send "Authorization: Bearer <secret>" with the secret from ${this.secretPath} (readable by the proxy's owner), or use mesh proxy-config` };
    }
    const given = Buffer.from(m[1]!);
    if (given.length === this.#secret.length && timingSafeEqual(given, this.#secret)) return { ok: true, by: "secret" };
    if (this.#verify && given.length > 64) {
      try {
        if (await this.#verify(m[1]!)) return { ok: true, by: "token" };
      } catch { /* refused below */ }
    }
    return { ok: false, status: 401, error: "Admin credential refused: not this admin API's secret" + (this.#verify ? " nor a valid admin token" : "") };
  }
}
