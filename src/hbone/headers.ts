/**
 * Checks on decoded field sections (RFC 9113 section 8): what makes a request or response
 * malformed, and the CONNECT rules of section 8.5. Works on flat [name, value, ...] lists.
 */

/** Connection-specific fields that HTTP/2 forbids (RFC 9113 8.2.2). */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

export type RequestCheck =
  | { ok: true; method: string; authority: string; headers: Record<string, string> }
  | { ok: false; malformed: boolean; reason: string };

function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // lower-case token characters only (RFC 9113 8.2.1 forbids upper case; 8.2 forbids controls/space)
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a) || c === 0x3a) return false;
  }
  return true;
}

function validValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  return !(first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09);
}

/** Adds a regular field to a header object, joining repeats as HTTP does (cookie with "; "). */
function addField(h: Record<string, string>, name: string, value: string): void {
  const prev = h[name];
  h[name] = prev === undefined ? value : prev + (name === "cookie" ? "; " : ", ") + value;
}

/**
 * Validates a request field section. `malformed: true` means a stream error (PROTOCOL_ERROR);
 * a well-formed request that is not a CONNECT is answered 400 by the caller.
 */
export function checkRequest(fields: readonly string[]): RequestCheck {
  let method = "";
  let authority = "";
  let hasScheme = false;
  let hasPath = false;
  let hasProtocol = false;
  let regular = false;
  const headers: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (!validValue(value) && value.length > 0) return { ok: false, malformed: true, reason: `invalid value of ${name}` };
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return { ok: false, malformed: true, reason: "pseudo-header after a regular field" };
      switch (name) {
        case ":method":
          if (method) return { ok: false, malformed: true, reason: "duplicate :method" };
          method = value;
          break;
        case ":authority":
          if (authority) return { ok: false, malformed: true, reason: "duplicate :authority" };
          authority = value;
          break;
        case ":scheme":
          if (hasScheme) return { ok: false, malformed: true, reason: "duplicate :scheme" };
          hasScheme = true;
          break;
        case ":path":
          if (hasPath) return { ok: false, malformed: true, reason: "duplicate :path" };
          hasPath = true;
          break;
        case ":protocol":
          hasProtocol = true;
          break;
        default:
          return { ok: false, malformed: true, reason: `unknown pseudo-header ${name}` };
      }
      continue;
    }
    regular = true;
    if (!validName(name)) return { ok: false, malformed: true, reason: `invalid field name ${JSON.stringify(name)}` };
    if (CONNECTION_SPECIFIC.has(name)) return { ok: false, malformed: true, reason: `connection-specific field ${name}` };
    if (name === "te" && value !== "trailers") return { ok: false, malformed: true, reason: "te other than trailers" };
    addField(headers, name, value);
  }
  if (!method) return { ok: false, malformed: true, reason: "missing :method" };
  if (method === "CONNECT" && !hasProtocol) {
    // RFC 9113 8.5: :scheme and :path omitted, :authority present.
    if (hasScheme || hasPath) return { ok: false, malformed: true, reason: "CONNECT with :scheme or :path" };
    if (!authority) return { ok: false, malformed: true, reason: "CONNECT without :authority" };
  } else if (hasProtocol) {
    return { ok: false, malformed: true, reason: ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL" };
  } else if (!hasScheme || !hasPath) {
    return { ok: false, malformed: true, reason: "request without :scheme or :path" };
  }
  return { ok: true, method, authority, headers };
}

export type ResponseCheck =
  | { ok: true; status: number; headers: Record<string, string> }
  | { ok: false; reason: string };

const NO_FIELDS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Validates a response field section; returns the status and the regular fields. */
export function checkResponse(fields: readonly string[]): ResponseCheck {
  let status = -1;
  let regular = false;
  // Most HBONE responses are a bare ":status: 200": share one empty object for them.
  let headers = NO_FIELDS;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return { ok: false, reason: "pseudo-header after a regular field" };
      if (name !== ":status" || status !== -1) return { ok: false, reason: `unexpected pseudo-header ${name}` };
      if (!/^[1-9][0-9][0-9]$/.test(value)) return { ok: false, reason: `invalid :status ${JSON.stringify(value)}` };
      status = Number(value);
      continue;
    }
    regular = true;
    if (!validName(name)) return { ok: false, reason: `invalid field name ${JSON.stringify(name)}` };
    if (CONNECTION_SPECIFIC.has(name)) return { ok: false, reason: `connection-specific field ${name}` };
    if (headers === NO_FIELDS) headers = {};
    addField(headers, name, value);
  }
  if (status < 0) return { ok: false, reason: "missing :status" };
  return { ok: true, status, headers };
}

/** Builds the CONNECT field section: pseudo-headers first, then the caller's fields in lower case. */
export function connectRequestFields(authority: string, headers?: Record<string, string | undefined>): string[] {
  const out = [":method", "CONNECT", ":authority", authority];
  if (headers) {
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined) continue;
      const name = k.toLowerCase();
      if (name.charCodeAt(0) === 0x3a || CONNECTION_SPECIFIC.has(name) || name === "host") continue;
      out.push(name, v);
    }
  }
  return out;
}
