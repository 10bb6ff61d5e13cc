/** Polling for tests: one way to wait for a condition, with one message when it never comes. */

/** Options of waitFor beyond the timeout. */
export interface WaitOptions {
  /** The shortest pause between looks (default 25 ms). */
  intervalMs?: number;
  /** More to say when the time is up (a log, the last state seen). */
  detail?: () => string;
}

/**
 * Calls `f` (sync or async) until it returns a truthy value, and returns that value. An async `f` is
 * awaited: its promise is not the answer (a pending promise is truthy, which once made every async wait
 * return after its first look). Throws, naming `what`, after `timeoutMs`. The pause between looks is
 * at least as long as the last look took, so a costly look (a process in a namespace, a request to a
 * loaded server) never takes more than half of the machine the test is waiting on.
 */
export async function waitFor<T>(
  what: string,
  f: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  opts: WaitOptions = {},
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const started = Date.now();
    const v = await f();
    if (v) return v;
    if (Date.now() > end) {
      const more = opts.detail?.();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${more ? `: ${more}` : ""}`);
    }
    await Bun.sleep(Math.max(opts.intervalMs ?? 25, Date.now() - started));
  }
}

/** Waits until something accepts TCP connections on host:port (a process started with a port given in advance). */
export async function waitForPort(port: number, timeoutMs = 10_000, host = "127.0.0.1"): Promise<void> {
  const accepts = () =>
    Bun.connect({ hostname: host, port, socket: { data() {}, open(s) { s.end(); }, error() {} } }).then(() => true, () => false);
  await waitFor(`a listener on ${host}:${port}`, accepts, timeoutMs, { intervalMs: 30 });
}
