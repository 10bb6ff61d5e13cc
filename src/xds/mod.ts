/**
 * Config distribution between the control role and the proxies: the wire protocol (./protocol.ts), what
 * each proxy needs (./views.ts), the transport-independent push engine the control role runs
 * (./server.ts), and the client library ztunnels and waypoints run (./client.ts: it joins the session with
 * the control plane in ./session.ts, the pure snapshot/delta merge in ./proxy_state.ts, and the data dir in
 * ./last_known_good.ts).
 */
export * from "./protocol.ts";
export { placeAll, viewOf, GLOBAL_COLLECTIONS, PLACED_COLLECTIONS, type Placement } from "./views.ts";
export { Connection, type StreamSink, type XdsEvent, XdsServer, type XdsServerOptions } from "./server.ts";
export { XdsClient, type XdsClientOptions, type XdsClientStatus } from "./client.ts";
export { authorityOf, callJson, errorOf, FrameReader, openSession, type TlsCredentials } from "./transport.ts";
export {
  FLOWS_PATH,
  type FlowBatch,
  FlowBatchSchema,
  type FlowFilter,
  filterOfQuery,
  type FlowPeer,
  flowQuery,
  type FlowRecord,
  FlowRecordSchema,
  type FlowReporter,
  type FlowVerdict,
  matchFlow,
  MAX_BATCH_FLOWS,
  parseSince,
} from "./flows.ts";
