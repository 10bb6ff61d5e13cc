/**
 * The flow endpoints of 15012: proxies report their flow records (POST, client certificate), operators
 * read them (GET, admin credential; `mesh observe`), once or as a live newline-delimited JSON stream.
 */
import type { Context, Hono } from "hono";
import { ErrorCode, logger } from "../core/mod.ts";
import type { Counter } from "../telemetry/mod.ts";
import { FLOWS_PATH, FlowBatchSchema, type FlowFilter, filterOfQuery, type FlowRecord, matchFlow, parseWith, proxyKey } from "../xds/mod.ts";
import type { Caller } from "../identity/mod.ts";
import type { ProxyId } from "../xds/mod.ts";
import type { ApiEnv } from "./api.ts";
import type { FlowStore } from "./flows.ts";

const log = logger("control");

/** Records a live reader may have queued before newer ones are dropped for it. */
const STREAM_BUFFER = 1000;

export interface FlowRoutesDeps {
  flows: FlowStore;
  received: Counter;
  /** The proxy a client certificate names (none for an admin). */
  proxyOf: (c: Caller) => ProxyId | undefined;
  /** A 401 answer unless the caller is an admin. */
  refuseNonAdmin: (c: Context<ApiEnv>, refusal: string) => Promise<Response | undefined>;
}

export interface StreamFormat {
  /** One record as it goes on the wire. */
  encode: (f: FlowRecord) => string;
  /** What is sent when nothing happened for a while (keeps proxies and idle timers from closing it). */
  keepalive: string;
  keepaliveMs?: number;
}

/**
 * A live stream of matching records (newline-delimited JSON for `mesh observe`, server-sent events for the
 * page); `first` goes out before the live ones.
 */
export function flowStream(store: FlowStore, filter: FlowFilter, first: FlowRecord[], format: StreamFormat): ReadableStream<Uint8Array> {
  const { encode } = format;
  const enc = new TextEncoder();
  let stop = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const f of first) controller.enqueue(enc.encode(encode(f)));
      const unsubscribe = store.subscribe((f) => {
        // A reader that does not keep up loses records; the control role holds none for it.
        if (matchFlow(f, filter) && (controller.desiredSize ?? 0) > 0) controller.enqueue(enc.encode(encode(f)));
      });
      const keepalive = setInterval(() => {
        if ((controller.desiredSize ?? 0) > 0) controller.enqueue(enc.encode(format.keepalive));
      }, format.keepaliveMs ?? 15_000);
      stop = () => {
        unsubscribe();
        clearInterval(keepalive);
      };
    },
    cancel() {
      stop();
    },
  }, new CountQueuingStrategy({ highWaterMark: STREAM_BUFFER }));
}

export function flowRoutes(app: Hono<ApiEnv>, d: FlowRoutesDeps): void {
  app.post(FLOWS_PATH, async (c) => {
    const caller = c.env.peer.caller;
    const proxy = caller && d.proxyOf(caller);
    if (!proxy) return c.json({ error: "Flow reports need a node or gateway client certificate", code: ErrorCode.TokenInvalid }, 401);
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      body = undefined;
    }
    const batch = parseWith(FlowBatchSchema, body);
    if (!batch.ok) {
      log.warn("flow report refused", { proxy: proxyKey(proxy), error: batch.error });
      return c.json({ error: `Invalid flow report: ${batch.error}`, code: ErrorCode.Usage }, 400);
    }
    d.flows.ingest(batch.value, proxyKey(proxy));
    d.received.inc({}, batch.value.flows.length);
    return c.body(null, 204);
  });

  app.get(FLOWS_PATH, async (c) => {
    const refused = await d.refuseNonAdmin(c, "Flows need an admin token (mesh token create --admin) or local access to the data dir (mesh observe --data-dir DIR)");
    if (refused) return refused;
    const q = filterOfQuery(new URL(c.req.url).searchParams);
    const { follow, limit, ...filter } = q;
    if (!follow) return c.json({ flows: d.flows.recent(filter, limit ?? 1000) });
    // Following: the last few (or all since --since) first, then each as it arrives.
    const first = d.flows.recent(filter, limit ?? (filter.since !== undefined ? 1000 : 20));
    const body = flowStream(d.flows, filter, first, { encode: (f) => JSON.stringify(f) + "\n", keepalive: "\n" });
    return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
  });
}
