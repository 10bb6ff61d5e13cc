/**
 * HTTP/2 over TLS to the control plane (client side): one session per credential set, JSON unary calls,
 * and the long-lived config stream with newline-delimited JSON frames both ways.
 */
import http2 from "node:http2";
import { ErrorCode, formatHostPort, MeshError, parseHostPort } from "../core/mod.ts";
import { ErrorResponseSchema, parseWith } from "./protocol.ts";

export interface TlsCredentials {
  /** Roots that the control plane's serving certificate must chain to. */
  ca: string;
  /** Client certificate chain and key (mTLS); absent for the bootstrap call. */
  cert?: string;
  key?: string;
}

/** "host:port" or "[v6]:port" -> https URL authority. */
export function authorityOf(controlPlane: string): string {
  const a = parseHostPort(controlPlane, 15012);
  if (!a) throw new MeshError(ErrorCode.Usage, `Invalid control plane address "${controlPlane}": use HOST:PORT, e.g. 10.0.0.10:15012`);
  return `https://${formatHostPort(a.host, a.port)}`;
}

export function openSession(controlPlane: string, creds: TlsCredentials, timeoutMs = 10_000): Promise<http2.ClientHttp2Session> {
  const authority = authorityOf(controlPlane);
  return new Promise((resolve, reject) => {
    const session = http2.connect(authority, {
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
      // Large pushes (a full snapshot of a big mesh) should not stall on the 64 KiB default window.
      settings: { initialWindowSize: 4 * 1024 * 1024 },
    });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new MeshError(ErrorCode.Unreachable, `Control plane ${controlPlane} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(new MeshError(ErrorCode.Unreachable, `Cannot reach the control plane at ${controlPlane}: ${e.message}`, { cause: e }));
    };
    session.once("error", fail);
    session.once("connect", () => {
      clearTimeout(timer);
      session.off("error", fail);
      // Later session errors surface on the streams using it; keep the process alive.
      session.on("error", () => {});
      resolve(session);
    });
  });
}

/** Status code and parsed JSON body of a unary call. */
export async function callJson(
  session: http2.ClientHttp2Session,
  method: "GET" | "POST",
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<{ status: number; body: unknown }> {
  return await new Promise((resolve, reject) => {
    const req = session.request({
      ":method": method,
      ":path": path,
      "content-type": "application/json",
      ...headers,
    }, { endStream: method === "GET" });
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new MeshError(ErrorCode.Unreachable, `Control plane did not answer ${method} ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    let status = 0;
    const chunks: Buffer[] = [];
    req.on("response", (h) => void (status = Number(h[":status"])));
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve({ status, body: text ? JSON.parse(text) : undefined });
      } catch {
        resolve({ status, body: { error: text.slice(0, 500), code: "MESH_UNEXPECTED_RESPONSE" } });
      }
    });
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(new MeshError(ErrorCode.Unreachable, `${method} ${path} failed: ${e.message}`, { cause: e }));
    });
    if (method !== "GET") req.end(JSON.stringify(body ?? {}));
  });
}

/** Turns a non-2xx answer into a MeshError carrying the server's code and message. */
export function errorOf(status: number, body: unknown, what: string): MeshError {
  const e = parseWith(ErrorResponseSchema, body);
  if (e.ok) return new MeshError(e.value.code, `${what}: ${e.value.error}`);
  return new MeshError(ErrorCode.Unreachable, `${what}: control plane answered HTTP ${status}`);
}

/**
 * Splits a byte stream into newline-terminated frames. Frames can be megabytes (snapshots), so chunks are
 * kept as they come and joined once per frame.
 */
export class FrameReader {
  #parts: Buffer[] = [];
  #size = 0;
  constructor(readonly maxFrameBytes = 512 * 1024 * 1024) {}

  /** Feeds a chunk; returns the complete frames it finished (without the newline). */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    let nl = chunk.indexOf(10);
    while (nl >= 0) {
      const piece = chunk.subarray(start, nl);
      if (this.#parts.length) {
        this.#parts.push(piece);
        out.push(Buffer.concat(this.#parts, this.#size + piece.length).toString("utf8"));
        this.#parts = [];
        this.#size = 0;
      } else {
        out.push(piece.toString("utf8"));
      }
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#parts.push(rest);
      this.#size += rest.length;
      if (this.#size > this.maxFrameBytes) {
        throw new MeshError(ErrorCode.Unreachable, `Frame larger than ${this.maxFrameBytes} bytes`);
      }
    }
    return out;
  }
}
