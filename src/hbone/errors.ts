/**
 * HBONE errors: one class on top of MeshError that carries what a caller needs to decide what to do
 * (the HTTP status of a refused CONNECT, the HTTP/2 error code of a reset, and whether a retry on a
 * new connection is safe).
 */
import { ErrorCode, MeshError } from "../core/mod.ts";
import { h2CodeName } from "./constants.ts";

export class HboneError extends MeshError {
  /** HTTP status of a CONNECT the server answered with something other than 2xx. */
  readonly status?: number;
  /** HTTP/2 error code of the RST_STREAM or GOAWAY that ended the stream. */
  readonly h2Code?: number;
  /** True when the request never reached the server's application, so opening it again is safe. */
  readonly retryable: boolean;
  constructor(
    code: string,
    message: string,
    opts: { status?: number; h2Code?: number; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { cause: opts.cause });
    this.name = "HboneError";
    this.status = opts.status;
    this.h2Code = opts.h2Code;
    this.retryable = opts.retryable ?? false;
  }
}

/**
 * A protocol violation detected while reading frames. `stream` > 0 means only that stream is
 * affected (RST_STREAM); otherwise the whole connection ends with GOAWAY.
 */
export class H2ProtocolError extends Error {
  constructor(readonly h2Code: number, message: string, readonly stream = 0) {
    super(message);
    this.name = "H2ProtocolError";
  }
}

export function resetError(h2Code: number, by: "peer" | "local"): HboneError {
  return new HboneError(ErrorCode.Http2Stream, `Stream reset by ${by}: ${h2CodeName(h2Code)}`, { h2Code });
}
