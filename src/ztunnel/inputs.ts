/**
 * Everything the ztunnel's listeners need, in one bundle: the mesh view, the HBONE client, a TCP
 * dialer, the original-destination lookup, telemetry and connection tracking. Tests swap any part.
 */
import type { ConnectionTracker } from "./connections.ts";
import type { HostResolver } from "./dns/mod.ts";
import type { RoundRobin } from "./outbound_plan.ts";
import type { ZtunnelState } from "./state.ts";
import { type ByteStream, type CopyOwner, type SocketStream, StreamCopy } from "../stream/mod.ts";
import type { ConnectionOutcome, ConnectionTelemetry, ConnectionView, ResponseFlags } from "./telemetry.ts";

export interface TunnelRequest {
  /** HBONE endpoint address and port (podIP:15008, or a waypoint's). */
  address: string;
  port: number;
  /** CONNECT target "ip:port". */
  authority: string;
  headers: Record<string, string>;
  /** Whose certificate to present: the SOURCE workload's. */
  sourceIdentity: string;
  /** The server must present one of these. */
  expectedIdentities: string[];
}

/** Opens HBONE tunnels; a refusal rejects with an error carrying the HTTP `status`. */
export interface HboneClient {
  connect(req: TunnelRequest): Promise<ByteStream>;
}

export interface ProxyInputs {
  state: ZtunnelState;
  hbone: HboneClient;
  /** Plain TCP from the ztunnel itself (never captured: OUTPUT path / exempt group). */
  dial(host: string, port: number): Promise<ByteStream>;
  /** The address a captured connection was meant for; undefined when it was not redirected to us. */
  originalDestination(s: SocketStream): { address: string; port: number } | undefined;
  telemetry: ConnectionTelemetry;
  tracker: ConnectionTracker;
  rr: RoundRobin;
  /** False before readiness and while draining: captured connections are refused. */
  accepting(): boolean;
  /** Addresses of ServiceEntry hosts resolved by DNS (absent: such destinations are refused). */
  resolver?: HostResolver;
}

/** The HTTP status an HBONE refusal carried, if any. */
export function statusOf(e: unknown): number | undefined {
  const s = (e as { status?: unknown } | undefined)?.status;
  return typeof s === "number" ? s : undefined;
}

/** Refuses a connection (TCP reset: the client must not mistake it for an empty answer) and records it. */
export function refuse(
  inputs: ProxyInputs,
  client: ByteStream,
  views: ConnectionView[],
  flags: Exclude<ResponseFlags, "-">,
  reason: string,
  started: number,
): void {
  client.reset();
  const o: ConnectionOutcome = { received: 0, sent: 0, durationMs: performance.now() - started, flags, reason };
  for (const v of views) inputs.telemetry.close(v, o);
}

/** One admitted connection: its copy, tracked for draining, reported when it ends. */
class ProxiedConnection implements CopyOwner {
  readonly #inputs: ProxyInputs;
  readonly #views: ConnectionView[];
  readonly #started: number;
  readonly copy: StreamCopy;
  constructor(inputs: ProxyInputs, client: ByteStream, upstream: ByteStream, views: ConnectionView[], started: number) {
    this.#inputs = inputs;
    this.#views = views;
    this.#started = started;
    for (const v of views) inputs.telemetry.open(v);
    inputs.tracker.add(this);
    this.copy = new StreamCopy(client, upstream, this);
  }
  abort(reason: Error): void {
    this.copy.abort(reason);
  }
  copyDone(s: StreamCopy): void {
    this.#inputs.tracker.delete(this);
    const o: ConnectionOutcome = {
      received: s.received,
      sent: s.sent,
      durationMs: performance.now() - this.#started,
      flags: "-",
      error: s.error?.message,
    };
    for (const v of this.#views) this.#inputs.telemetry.close(v, o);
  }
}

/** Copies an admitted connection, tracked for draining and reported when it ends. */
export function proxy(
  inputs: ProxyInputs,
  client: ByteStream,
  upstream: ByteStream,
  views: ConnectionView[],
  started: number,
): void {
  new ProxiedConnection(inputs, client, upstream, views, started);
}
