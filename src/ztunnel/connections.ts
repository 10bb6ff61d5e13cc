/**
 * The connections a ztunnel is proxying, so that a stop can drain them: stop accepting, let them finish
 * on their own up to a deadline, then abort whatever is left.
 */

export interface TrackedConnection {
  /** Abort both sides now. */
  abort(reason: Error): void;
}

export interface DrainResult {
  /** Connections that finished on their own during the drain. */
  finished: number;
  /** Connections still open at the deadline, aborted. */
  aborted: number;
}

export class ConnectionTracker {
  #open = new Set<TrackedConnection>();
  #waiters: (() => void)[] = [];

  get size(): number {
    return this.#open.size;
  }

  add(c: TrackedConnection): void {
    this.#open.add(c);
  }

  delete(c: TrackedConnection): void {
    if (!this.#open.delete(c)) return;
    if (this.#open.size === 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    }
  }

  /** Waits until no connection is open or `deadlineMs` passed, then aborts the rest. */
  async drain(deadlineMs: number): Promise<DrainResult> {
    const before = this.#open.size;
    if (before > 0 && deadlineMs > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadlineMs);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const left = [...this.#open];
    for (const c of left) c.abort(new Error(`drain timeout: connection still open after ${deadlineMs} ms`));
    return { finished: before - left.length, aborted: left.length };
  }
}
