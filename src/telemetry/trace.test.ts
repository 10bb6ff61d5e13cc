import { describe, expect, test } from "bun:test";
import { newTraceId, newTraceparent, parseTraceparent, traceIdOf } from "./trace.ts";

describe("W3C traceparent", () => {
  test("a new one: version 00, random 16-byte trace id, 8-byte span id, the given flags", () => {
    const tp = newTraceparent();
    expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(parseTraceparent(tp)).toEqual({ traceId: tp.slice(3, 35), spanId: tp.slice(36, 52), flags: "00" });
    expect(traceIdOf(tp)).toBe(tp.slice(3, 35));
    const ids = new Set(Array.from({ length: 2000 }, () => newTraceId()));
    expect(ids.size).toBe(2000);
  });

  test("continuing a trace keeps its id with a new span", () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const a = newTraceparent(trace, "01");
    const b = newTraceparent(trace, "01");
    expect(traceIdOf(a)).toBe(trace);
    expect(a.endsWith("-01")).toBe(true);
    expect(a.slice(36, 52)).not.toBe(b.slice(36, 52));
  });

  test.each([
    ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true],
    [" 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00 ", true],
    ["01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later", true],
    ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false],
    ["ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false],
    ["00-00000000000000000000000000000000-00f067aa0ba902b7-01", false],
    ["00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false],
    ["00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false],
    ["", false],
    [undefined, false],
  ])("parse %p: valid %p", (v, ok) => {
    const p = parseTraceparent(v);
    expect(p !== undefined).toBe(ok);
    if (p) expect(p.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });
});
