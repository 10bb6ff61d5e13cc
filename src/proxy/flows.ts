/**
 * A proxy's flow records on their way to the control role: a bounded ring the data path writes into
 * (synchronously, O(1), never waiting), emptied about once a second over the session the proxy already
 * holds with the control plane.
 *
 * Bounded everywhere: at most `capacity` records wait; beyond that, records are folded into per-edge
 * summaries (counts and bytes summed, at most `summaryKeys` of them), and beyond those they are dropped and
 * counted. Without a control plane (or while a batch is refused) records are dropped and counted at once:
 * the proxy keeps serving and keeps no backlog. `mesh_flow_records_total{result}` says what happened to each.
 */
import type { FlowBatch, FlowRecord } from "../xds/mod.ts";
import type { Registry } from "../telemetry/mod.ts";

export interface FlowRingOptions {
  /** Sends one batch; resolves whether the control role took it. */
  send: (batch: FlowBatch) => Promise<boolean>;
  /** Whether a control-plane session is open now (no session: drop at once). */
  connected: () => boolean;
  metrics?: Registry;
  /** Records kept between two sends (default 1000: a batch stays well under the control role's 1 MiB body limit). */
  capacity?: number;
  /** Summaries kept between two sends once the ring is full (default 256). */
  summaryKeys?: number;
  /** Time between sends (default 1 s). */
  intervalMs?: number;
}

type Result = "reported" | "summarized" | "dropped_overflow" | "dropped_no_control_plane" | "dropped_send_failed";

/**
 * The policy a refusal's reason names ("ALLOW policy ns/name rule 0", "no ALLOW policy matched
 * (ns/name)"), for a decision that carries no policy of its own.
 */
export function policyOfReason(reason: string | undefined): string | undefined {
  if (!reason) return undefined;
  return /polic(?:y|ies)(?: matched)? \(?([a-z0-9][-a-z0-9.]*\/[a-z0-9][-a-z0-9.]*)/i.exec(reason)?.[1];
}

/** What identifies an edge: records of one edge fold into one summary when over budget. */
function edgeKey(f: FlowRecord): string {
  return [f.reporter, f.src.workload ?? f.src.identity ?? f.src.address, f.dst.service ?? f.dst.workload ?? f.dst.address, f.dst.port, f.waypoint, f.verdict, f.status, f.policy, f.mtls, f.l7, f.tunneled].join("|");
}

export class FlowRing {
  readonly #o: FlowRingOptions;
  readonly #capacity: number;
  readonly #summaryKeys: number;
  #pending: FlowRecord[] = [];
  #summaries = new Map<string, FlowRecord>();
  #dropped = 0;
  #sending = false;
  #timer?: ReturnType<typeof setInterval>;
  readonly #counts: Record<Result, { inc(n?: number): void; get(): number }>;

  constructor(opts: FlowRingOptions) {
    this.#o = opts;
    this.#capacity = opts.capacity ?? 1000;
    this.#summaryKeys = opts.summaryKeys ?? 256;
    const c = opts.metrics?.counter("mesh_flow_records_total", "Flow records by what happened to them on their way to the control role", ["result"]);
    const results: Result[] = ["reported", "summarized", "dropped_overflow", "dropped_no_control_plane", "dropped_send_failed"];
    const local = () => {
      let n = 0;
      return { inc: (k = 1) => void (n += k), get: () => n };
    };
    this.#counts = Object.fromEntries(results.map((r) => {
      if (!c) return [r, local()];
      const h = c.labels({ result: r });
      h.inc(0);
      return [r, h];
    })) as Record<Result, { inc(n?: number): void; get(): number }>;
  }

  /** Counts so far, by result (for tests and config_dump). */
  stats(): Record<Result, number> & { pending: number; summaries: number } {
    const out = Object.fromEntries(Object.entries(this.#counts).map(([k, h]) => [k, h.get()])) as Record<Result, number>;
    return { ...out, pending: this.#pending.length, summaries: this.#summaries.size };
  }

  /**
   * Called by the data path when a flow ends. Never throws, never waits. `flow` may be a function that makes
   * the record: it is not called when the record would be dropped at once (no control plane).
   */
  record(flow: FlowRecord | (() => FlowRecord)): void {
    if (!this.#o.connected()) {
      this.#counts.dropped_no_control_plane.inc();
      return;
    }
    let f: FlowRecord;
    try {
      f = typeof flow === "function" ? flow() : flow;
    } catch {
      return; // a record that cannot be made is not the data path's problem
    }
    if (this.#pending.length < this.#capacity) {
      this.#pending.push(f);
      return;
    }
    const key = edgeKey(f);
    const s = this.#summaries.get(key);
    if (s) {
      s.count = (s.count ?? 1) + 1;
      s.bytesIn += f.bytesIn;
      s.bytesOut += f.bytesOut;
      s.durationMs = Math.max(s.durationMs, f.durationMs);
    } else if (this.#summaries.size < this.#summaryKeys) {
      this.#summaries.set(key, { ...f, count: 1 });
    } else {
      this.#dropped++;
      this.#counts.dropped_overflow.inc();
    }
  }

  /** Sends what waits every interval until stop(). */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs ?? 1000);
    this.#timer.unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Sends the waiting records now (one batch at a time: while one is out, records keep waiting, bounded). */
  async flush(): Promise<void> {
    if (this.#sending) return;
    const flows = this.#pending;
    const single = flows.length;
    let folded = 0;
    for (const s of this.#summaries.values()) {
      flows.push(s);
      folded += s.count ?? 1;
    }
    const dropped = this.#dropped;
    if (!flows.length && !dropped) return;
    this.#pending = [];
    this.#summaries = new Map();
    this.#dropped = 0;
    if (!this.#o.connected()) {
      this.#counts.dropped_no_control_plane.inc(single + folded);
      return;
    }
    this.#sending = true;
    try {
      const ok = await this.#o.send({ flows, dropped }).catch(() => false);
      if (ok) {
        this.#counts.reported.inc(single);
        this.#counts.summarized.inc(folded);
      } else {
        this.#counts.dropped_send_failed.inc(single + folded);
      }
    } finally {
      this.#sending = false;
    }
  }
}
