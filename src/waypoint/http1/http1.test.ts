/** HTTP/1.1 heads and body framing (RFC 9112), table-driven, including the smuggling cases refused. */
import { describe, expect, test } from "bun:test";
import { BodyTracker } from "./body.ts";
import { parseRequestHead, parseResponseHead, requestFraming, responseFraming } from "./head.ts";
import { headerMapOf, writeFields } from "./fields.ts";

const b = (s: string) => Buffer.from(s, "latin1");

describe("request heads", () => {
  test("a request line, fields, and where the head ends", () => {
    const r = parseRequestHead(b("GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A:  one \r\nx-a: two\r\n\r\nBODY"), 1024);
    expect(r.kind).toBe("head");
    if (r.kind !== "head") return;
    expect(r.head).toEqual({ method: "GET", target: "/a?x=1", minor: 1, fields: ["host", "h", "x-a", "one", "x-a", "two"] });
    expect(r.length).toBe(b("GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A:  one \r\nx-a: two\r\n\r\n").length);
  });
  test("incomplete until the empty line; leading empty lines tolerated", () => {
    expect(parseRequestHead(b("GET / HTTP/1.1\r\nHost: h\r\n"), 1024).kind).toBe("incomplete");
    expect(parseRequestHead(b("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 1024).kind).toBe("head");
  });
  const bad: [string, string, number][] = [
    ["space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400],
    ["obsolete folding", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400],
    ["bare LF", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400],
    ["no version", "GET /\r\nHost: h\r\n\r\n", 400],
    ["HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505],
    ["control character in a value", "GET / HTTP/1.1\r\nHost: h\u0001\r\n\r\n", 400],
    ["space in the target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ];
  for (const [name, text, status] of bad) {
    test(`refused: ${name} (${status})`, () => {
      const r = parseRequestHead(b(text), 1024);
      expect(r.kind).toBe("error");
      if (r.kind === "error") expect(r.status).toBe(status as never);
    });
  }
  test("a head larger than the limit: 431", () => {
    const r = parseRequestHead(b(`GET / HTTP/1.1\r\nX: ${"a".repeat(2000)}\r\n\r\n`), 1024);
    expect(r.kind === "error" && r.status).toBe(431);
    expect(parseRequestHead(b(`GET / HTTP/1.1\r\nX: ${"a".repeat(2000)}`), 1024).kind).toBe("error");
  });
});

describe("request body framing (smuggling defences)", () => {
  const framing = (fields: string[], minor: 0 | 1 = 1) =>
    requestFraming({ method: "POST", target: "/", minor, fields: fields.map((f, i) => (i % 2 ? f : f.toLowerCase())) });
  test("Content-Length, chunked, none", () => {
    expect(framing(["Content-Length", "5"])).toEqual({ kind: "length", length: 5 });
    expect(framing(["Content-Length", "0"])).toEqual({ kind: "none" });
    expect(framing(["Transfer-Encoding", "chunked"])).toEqual({ kind: "chunked" });
    expect(framing([])).toEqual({ kind: "none" });
    expect(framing(["Content-Length", "5", "Content-Length", "5"])).toEqual({ kind: "length", length: 5 });
  });
  test("refused: both fields, differing lengths, a non-chunked last coding, chunked in HTTP/1.0", () => {
    expect("error" in framing(["Content-Length", "5", "Transfer-Encoding", "chunked"])).toBe(true);
    expect("error" in framing(["Content-Length", "5", "Content-Length", "6"])).toBe(true);
    expect("error" in framing(["Content-Length", "-1"])).toBe(true);
    expect("error" in framing(["Content-Length", "0x10"])).toBe(true);
    expect("error" in framing(["Transfer-Encoding", "chunked, gzip"])).toBe(true);
    expect("error" in framing(["Transfer-Encoding", "chunked"], 0)).toBe(true);
  });
});

describe("response heads and framing", () => {
  test("status line and fields", () => {
    const r = parseResponseHead(b("HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nabc"), 1024);
    expect(r.kind === "head" && r.head.status).toBe(404);
    if (r.kind !== "head") return;
    expect(responseFraming(r.head, "GET")).toEqual({ kind: "length", length: 3 });
    expect(responseFraming(r.head, "HEAD")).toEqual({ kind: "none" });
  });
  test("no length: until close; 204 and 304 never have a body", () => {
    const head = (status: number, fields: string[] = []) => ({ status, reason: "", minor: 1 as const, fields });
    expect(responseFraming(head(200), "GET")).toEqual({ kind: "close" });
    expect(responseFraming(head(204, ["content-length", "10"]), "GET")).toEqual({ kind: "none" });
    expect(responseFraming(head(304), "GET")).toEqual({ kind: "none" });
    expect(responseFraming(head(200, ["transfer-encoding", "chunked"]), "GET")).toEqual({ kind: "chunked" });
  });
});

describe("body tracking", () => {
  test("a chunked body in pieces, with extensions and trailers, followed by the next message", () => {
    const whole = b("4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\n");
    const bodyLen = whole.indexOf("GET");
    for (const step of [1, 3, 7, whole.length]) {
      const t = new BodyTracker({ kind: "chunked" });
      let consumed = 0;
      for (let i = 0; i < whole.length && !t.done; i += step) {
        const piece = whole.subarray(i, Math.min(whole.length, i + step));
        consumed += t.feed(piece, 0);
      }
      expect(t.error).toBeUndefined();
      expect(t.done).toBe(true);
      expect(consumed).toBe(bodyLen);
    }
  });
  test("the payload of a chunked body without its framing", () => {
    const parts: string[] = [];
    const t = new BodyTracker({ kind: "chunked" }, (buf, s, e) => parts.push(Buffer.from(buf.subarray(s, e)).toString()));
    t.feed(b("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), 0);
    expect(parts.join("")).toBe("abcde");
    expect(t.done).toBe(true);
  });
  test("malformed chunked bodies are errors", () => {
    for (const bad of ["zz\r\n", "3\r\nabcX", "3\nabc", "0\r\nX: y\n"]) {
      const t = new BodyTracker({ kind: "chunked" });
      t.feed(b(bad), 0);
      expect(t.error).toBeDefined();
    }
  });
  test("Content-Length counts down; a cut-short body is an error at EOF", () => {
    const t = new BodyTracker({ kind: "length", length: 5 });
    expect(t.feed(b("abc"), 0)).toBe(3);
    expect(t.feed(b("defgh"), 0)).toBe(2);
    expect(t.done).toBe(true);
    const cut = new BodyTracker({ kind: "length", length: 5 });
    cut.feed(b("ab"), 0);
    cut.eof();
    expect(cut.error).toBeDefined();
    const close = new BodyTracker({ kind: "close" });
    close.feed(b("anything"), 0);
    close.eof();
    expect(close.done).toBe(true);
  });
});

describe("fields across the proxy", () => {
  test("hop-by-hop, framing and Connection-named fields stay behind", () => {
    const m = headerMapOf(["host", "h", "connection", "keep-alive, X-Secret", "x-secret", "s", "keep-alive", "5", "content-length", "3", "accept", "a", "accept", "b"]);
    expect(m).toEqual({ accept: ["a", "b"] });
  });
  test("values that could split a head are never written", () => {
    expect(writeFields("", { a: ["1"], b: ["x\r\nInjected: 1"], "bad name": ["2"] })).toBe("a: 1\r\n");
  });
});
