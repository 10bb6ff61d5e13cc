/**
 * Structured logging: one JSON object per line on stderr, with a scope and a level that can be
 * changed at run time per scope (the admin API's /logging). Fields carry identities and connection
 * ids so a connection can be followed across ztunnel -> waypoint -> ztunnel.
 */
export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const levels = new Map<string, Level>();
let defaultLevel: Level = levelFromEnv() ?? "info";

/** MESH_LOG_LEVEL, when the runtime lets us read it (Deno without --allow-env throws: then the default). */
function levelFromEnv(): Level | undefined {
  try {
    const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.MESH_LOG_LEVEL;
    return v && v in order ? (v as Level) : undefined;
  } catch {
    return undefined;
  }
}
const defaultSink = (line: string): void => {
  (globalThis as { process?: { stderr?: { write(s: string): void } } }).process?.stderr?.write(line + "\n");
};
let sink: (line: string) => void = defaultSink;

/** Sets the level of one scope, or of every scope without its own level when `scope` is "default". */
export function setLevel(scope: string, level: Level): void {
  if (!(level in order)) throw new Error(`Unknown log level "${level}": use debug, info, warn or error`);
  if (scope === "default") defaultLevel = level;
  else levels.set(scope, level);
}

/** Current levels: "default" plus every scope that has its own. */
export function getLevels(): Record<string, Level> {
  return { default: defaultLevel, ...Object.fromEntries(levels) };
}

/** Replaces where lines go (tests capture them). Returns the previous sink. */
export function setSink(next: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = next;
  return prev;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: Level): boolean;
}

let queued: string[] = [];
let queuedSink: ((line: string) => void) | null = null;

function flushQueued(): void {
  const lines = queued;
  const to = queuedSink!;
  queued = [];
  queuedSink = null;
  // The default sink takes them in one write; a test's sink still sees one line per call.
  if (to === defaultSink) to(lines.join("\n"));
  else for (const l of lines) to(l);
}

/**
 * `batched`: lines are queued and written together once per event-loop turn (one write for many
 * lines), for loggers on a hot path such as a proxy's per-request access log. Order within the logger
 * is kept; lines of other loggers may come first.
 */
export function logger(scope: string, opts: { batched?: boolean } = {}): Logger {
  const enabled = (level: Level) => order[level] >= order[levels.get(scope) ?? defaultLevel];
  const batched = opts.batched === true;
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (!enabled(level)) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, scope, msg, ...fields });
    if (!batched) return sink(line);
    if (queuedSink !== null && queuedSink !== sink) flushQueued();
    if (queuedSink === null) {
      queuedSink = sink;
      setTimeout(flushQueued, 0);
    }
    queued.push(line);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    enabled,
  };
}
