/**
 * The control role's configuration: a mesh.yaml file or a directory of *.yaml files, watched. Changes are
 * debounced; in a directory only the files that changed are read and parsed again. An invalid
 * configuration never replaces the last good one: its diagnostics (file:line:col) are logged, counted and
 * kept for `mesh status` until a valid one arrives.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import {
  buildModel,
  type ConfigFile,
  type Diagnostic,
  formatDiagnostic,
  blockingErrors,
  parseFile,
  type ParsedFile,
  type SourcePosition,
} from "../config/mod.ts";
import { configFilePaths } from "../platform/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { logger } from "../core/mod.ts";

const log = logger("control");

export interface ConfigUpdate {
  model: MeshModel;
  /** When the change was first noticed (ms since epoch). */
  changeStartedAt: number;
  warnings: Diagnostic[];
}

export interface ConfigError {
  at: Date;
  /** Errors first, then warnings. */
  diagnostics: Diagnostic[];
}

/**
 * What the control role needs from where its configuration comes from: a file or directory (ConfigSource,
 * below) or the cluster (KubernetesPlane's source, src/kube). Both report through the same
 * ConfigUpdate/ConfigError callbacks.
 */
export interface ModelSource {
  /** Where the configuration comes from, for status and log lines. */
  readonly path: string;
  /** Reads everything once (reporting through the callbacks), then follows changes. */
  start(): Promise<void>;
  /** Re-reads now. */
  refresh(): Promise<void>;
  close(): void | Promise<void>;
  /** Rehearses a build off the clock (file mode). */
  warmUp?(): void;
}

export interface ConfigSourceOptions {
  path: string;
  debounceMs?: number;
  /** Safety net for file systems without change events (network mounts): compare mtimes this often. */
  pollMs?: number;
  /** Use file change events (default true); false leaves only polling. */
  watch?: boolean;
  onUpdate: (u: ConfigUpdate) => void;
  onError: (e: ConfigError) => void;
}

interface CachedFile {
  mtimeMs: number;
  size: number;
  text: string;
  parsed: ParsedFile;
}

export class ConfigSource {
  readonly path: string;
  #o: ConfigSourceOptions;
  #isDir = false;
  #files = new Map<string, CachedFile>();
  #watcher?: FSWatcher;
  #poll?: ReturnType<typeof setInterval>;
  #timer?: ReturnType<typeof setTimeout>;
  #dirty = new Set<string>();
  #all = false;
  #firstEventAt?: number;
  #running?: Promise<void>;
  #closed = false;
  lastError?: ConfigError;
  lastGood?: MeshModel;
  /** Files read and parsed since start (a change in a directory re-reads only what changed). */
  readonly stats = { reads: 0, parses: 0, builds: 0 };
  warnings: Diagnostic[] = [];

  constructor(opts: ConfigSourceOptions) {
    this.#o = opts;
    this.path = resolve(opts.path);
  }

  /** Reads everything once (reporting through onUpdate/onError), then watches. */
  async start(): Promise<void> {
    this.#isDir = (await stat(this.path)).isDirectory();
    this.#all = true;
    await this.#reload(Date.now());
    const dir = this.#isDir ? this.path : dirname(this.path);
    const own = basename(this.path);
    if (this.#o.watch !== false) try {
      // The directory, not the file: editors and ConfigMap updates replace files by rename.
      this.#watcher = watch(dir, (_event, filename) => {
        if (this.#isDir) {
          if (filename) this.#dirty.add(join(this.path, filename.toString()));
          else this.#all = true;
        } else if (!filename || filename.toString() === own) {
          this.#all = true;
        } else {
          return;
        }
        this.#schedule();
      });
      this.#watcher.on("error", (e) => log.warn("config watch failed; polling only", { path: this.path, error: String(e) }));
    } catch (e) {
      log.warn("cannot watch the configuration; polling only", { path: this.path, error: String(e) });
    }
    const pollMs = this.#o.pollMs ?? 2000;
    if (pollMs > 0) this.#poll = setInterval(() => void this.#pollOnce(), pollMs);
  }

  /** Builds the current files once more and drops the result: warms the JIT for the first real change. */
  warmUp(): void {
    if (this.#closed || this.#running || !this.#files.size) return;
    buildModel([...this.#files.values()].map((f) => f.parsed));
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#timer);
  }

  /** Re-reads now (tests and `mesh lab apply` can force it without waiting for the watcher). */
  async refresh(): Promise<void> {
    this.#all = true;
    this.#firstEventAt ??= Date.now();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#fire();
  }

  #schedule(): void {
    this.#firstEventAt ??= Date.now();
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#fire(), this.#o.debounceMs ?? 50);
  }

  async #fire(): Promise<void> {
    this.#timer = undefined;
    // One reload at a time; events during a reload schedule the next one.
    while (this.#running) await this.#running;
    if (this.#closed) return;
    const started = this.#firstEventAt ?? Date.now();
    this.#firstEventAt = undefined;
    this.#running = this.#reload(started).finally(() => (this.#running = undefined));
    await this.#running;
  }

  async #pollOnce(): Promise<void> {
    if (this.#running || this.#timer || this.#closed) return;
    try {
      const paths = this.#isDir ? await configFilePaths(this.path) : [this.path];
      let changed = paths.length !== this.#files.size;
      for (const p of paths) {
        const c = this.#files.get(p);
        if (!c) {
          changed = true;
          this.#dirty.add(p);
          continue;
        }
        const st = await stat(p).catch(() => undefined);
        if (!st || st.mtimeMs !== c.mtimeMs || st.size !== c.size) {
          changed = true;
          this.#dirty.add(p);
        }
      }
      if (changed) this.#schedule();
    } catch { /* the next poll retries */ }
  }

  async #reload(changeStartedAt: number): Promise<void> {
    let paths: string[];
    try {
      paths = this.#isDir ? await configFilePaths(this.path) : [this.path];
    } catch (e) {
      this.#fail([{ file: this.path, line: 0, col: 0, severity: "error", message: (e as Error).message, rule: "config-not-found" }]);
      return;
    }
    const all = this.#all;
    this.#all = false;
    const dirty = this.#dirty;
    this.#dirty = new Set();
    let changed = false;
    const present = new Set(paths);
    for (const p of [...this.#files.keys()]) {
      if (!present.has(p)) {
        this.#files.delete(p);
        changed = true;
      }
    }
    const readErrors: Diagnostic[] = [];
    for (const p of paths) {
      const cached = this.#files.get(p);
      if (cached && !all && !dirty.has(p)) continue;
      try {
        const [st, text] = await Promise.all([stat(p), readFile(p, "utf8")]);
        this.stats.reads++;
        if (cached && cached.text === text) {
          cached.mtimeMs = st.mtimeMs;
          cached.size = st.size;
          continue;
        }
        this.#files.set(p, { mtimeMs: st.mtimeMs, size: st.size, text, parsed: lighten({ path: p, text }, parseFile({ path: p, text })) });
        this.stats.parses++;
        changed = true;
      } catch (e) {
        // Vanished between listing and reading (an editor's rename): the next event reads it again.
        if ((e as NodeJS.ErrnoException).code === "ENOENT") {
          if (this.#files.delete(p)) changed = true;
          continue;
        }
        readErrors.push({ file: p, line: 0, col: 0, severity: "error", message: `Cannot read: ${(e as Error).message}`, rule: "config-read" });
      }
    }
    if (readErrors.length) return this.#fail(readErrors);
    if (!changed && this.lastGood && !this.lastError) return;
    const t0 = performance.now();
    const { model, diagnostics } = buildModel([...this.#files.values()].map((f) => f.parsed));
    this.stats.builds++;
    // Only errors that would make the model say something else than what was written stop the push; an
    // error the data plane enforces fail-closed (an L7 policy with no waypoint) must reach it, or the
    // last good, less strict, configuration would keep serving.
    if (blockingErrors(diagnostics).length) return this.#fail(diagnostics);
    const enforced = diagnostics.filter((d) => d.severity === "error");
    if (enforced.length) {
      log.warn("configuration served with errors the data plane enforces fail-closed", {
        path: this.path,
        errors: enforced.slice(0, 20).map(formatDiagnostic),
      });
    }
    this.lastGood = model;
    this.lastError = undefined;
    this.warnings = diagnostics;
    log.info("configuration loaded", {
      path: this.path,
      files: this.#files.size,
      workloads: model.workloads.length,
      services: model.services.length,
      warnings: diagnostics.length,
      buildMs: Math.round(performance.now() - t0),
      sinceChangeMs: Date.now() - changeStartedAt,
    });
    this.#o.onUpdate({ model, changeStartedAt, warnings: diagnostics });
  }

  #fail(diagnostics: Diagnostic[]): void {
    const sorted = [...diagnostics].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
    this.lastError = { at: new Date(), diagnostics: sorted };
    const errors = sorted.filter((d) => d.severity === "error");
    log.error("configuration invalid; keeping the last good one", {
      path: this.path,
      errors: errors.length,
      first: errors.slice(0, 20).map(formatDiagnostic),
      serving: this.lastGood ? "last good configuration" : "nothing yet",
    });
    this.#o.onError(this.lastError);
  }
}

/**
 * A parsed file that does not keep its YAML syntax tree. The tree (what `locate` reads) is several times
 * the size of the values; a big mesh kept hundreds of megabytes alive for positions that only a diagnostic
 * needs. Each object's own position (its `source` in the model) is kept; any deeper position re-parses
 * the file once, on demand.
 */
function lighten(file: ConfigFile, parsed: ParsedFile): ParsedFile {
  const roots: SourcePosition[] = parsed.objects.map((o) => o.locate([]));
  let full: ParsedFile | undefined;
  const again = () => (full ??= parseFile(file));
  return {
    file: parsed.file,
    diagnostics: parsed.diagnostics,
    objects: parsed.objects.map((o, i) => ({
      file: o.file,
      doc: o.doc,
      value: o.value,
      locate: (path, opts) => (path.length === 0 && !opts?.key ? roots[i]! : again().objects[i]!.locate(path, opts)),
    })),
  };
}
