/**
 * What a proxy keeps in its data dir so that a restart while the control plane is down still serves: the
 * last configuration it applied from the control plane (as a snapshot message) and its control-plane
 * client certificate. Files are written atomically (write, then rename) and readable by root only, since
 * the certificate file holds a private key.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { logger, writeFileAtomic } from "../core/mod.ts";
import { parseWith, type SnapshotMessage, SnapshotMessageSchema } from "./protocol.ts";

const log = logger("xds-client");

/** A control-plane client certificate held by a proxy. */
export interface ClientCert {
  certPem: string;
  chainPem: string;
  keyPem: string;
  notAfter: string;
  issuedAt: string;
}

export class LastKnownGood {
  readonly #view?: string;
  readonly #client?: string;
  readonly #current: () => SnapshotMessage | undefined;
  #saveTimer?: ReturnType<typeof setTimeout>;

  /**
   * @param dataDir where to keep the files; undefined keeps nothing.
   * @param proxy the proxy's key (proxyKey()), which names the files.
   * @param current what to write when a save is due: the configuration held then, or undefined when what
   *   is held did not come from the control plane (no need to write back what was just read).
   */
  constructor(dataDir: string | undefined, proxy: string, current: () => SnapshotMessage | undefined) {
    this.#current = current;
    if (!dataDir) return;
    const safe = proxy.replace(/[^A-Za-z0-9._-]/g, "_");
    this.#view = join(dataDir, `xds-${safe}.json`);
    this.#client = join(dataDir, `xds-${safe}-client.json`);
  }

  /** The file a saved configuration lives in (for logs). */
  get file(): string | undefined {
    return this.#view;
  }

  /** The saved configuration, if there is a readable and well-formed one. */
  load(): SnapshotMessage | undefined {
    const f = this.#view;
    if (!f) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(f, "utf8"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") log.warn("ignoring unreadable last-known-good configuration", { file: f, error: String(e) });
      return undefined;
    }
    const p = parseWith(SnapshotMessageSchema, raw);
    if (!p.ok) {
      log.warn("ignoring invalid last-known-good configuration", { file: f, error: p.error });
      return undefined;
    }
    return p.value as SnapshotMessage;
  }

  /** Coalesced: a burst of versions writes the file once. flush() writes what is pending. */
  save(): void {
    if (!this.#view || this.#saveTimer) return;
    this.#saveTimer = setTimeout(() => this.#write(), 50);
  }

  /** Writes a pending save now (at stop, so the newest version survives the exit). */
  flush(): void {
    if (this.#saveTimer) this.#write();
  }

  #write(): void {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const f = this.#view;
    const s = this.#current();
    if (!f || !s) return;
    try {
      writeAtomic(f, JSON.stringify(s), 0o600);
    } catch (e) {
      log.warn("cannot save last-known-good configuration", { file: f, error: String(e) });
    }
  }

  loadClientCert(): ClientCert | undefined {
    const f = this.#client;
    if (!f) return undefined;
    try {
      const c = JSON.parse(readFileSync(f, "utf8")) as ClientCert;
      if (typeof c.certPem === "string" && typeof c.keyPem === "string" && typeof c.notAfter === "string") return c;
    } catch { /* absent or unreadable: bootstrap again */ }
    return undefined;
  }

  saveClientCert(c: ClientCert): void {
    const f = this.#client;
    if (!f) return;
    try {
      writeAtomic(f, JSON.stringify(c), 0o600);
    } catch (e) {
      log.warn("cannot save the control-plane client certificate", { file: f, error: String(e) });
    }
  }
}

const writeAtomic = writeFileAtomic;
