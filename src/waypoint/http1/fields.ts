/**
 * Header fields as they cross the proxy: hop-by-hop fields (RFC 9110 7.6.1) stay on their connection,
 * framing fields are rewritten for the next hop, everything else travels as lower-case names (as Envoy
 * forwards HTTP/1.1).
 */
import type { HeaderMap } from "../../route/mod.ts";
import { fieldTokens } from "./head.ts";

/** Never forwarded: they describe one connection. Framing is recomputed per hop. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "upgrade",
  "content-length",
  "host",
]);

/** The fields of an HTTP/1.1 message (names lower-cased by the parser) as a HeaderMap, without hop-by-hop and framing fields. */
export function headerMapOf(fields: string[]): HeaderMap {
  const out: HeaderMap = {};
  let named: string[] | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (HOP_BY_HOP.has(name)) {
      if (name === "connection") named = fieldTokens(fields, "connection");
      continue;
    }
    const list = out[name];
    if (list) list.push(fields[i + 1]!);
    else out[name] = [fields[i + 1]!];
  }
  // Fields the sender listed in Connection are hop-by-hop too.
  if (named) for (const n of named) delete out[n];
  return out;
}

const UNSAFE = /[\r\n\0]/;
const NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Appends `name: value` lines for every value of `headers` to `head`. Values from configuration or
 * token claims that could split the head (CR, LF, NUL), and names that are not tokens, are dropped.
 */
export function writeFields(head: string, headers: HeaderMap): string {
  for (const name in headers) {
    const values = headers[name]!;
    if (!NAME.test(name)) continue;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (UNSAFE.test(v)) continue;
      head += name + ": " + v + "\r\n";
    }
  }
  return head;
}
