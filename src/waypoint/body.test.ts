/** RequestBody: delivery with backpressure, and replay for retries and mirrors within the record limit. */
import { describe, expect, test } from "bun:test";
import { type BodySink, RequestBody } from "./body.ts";

function sink(accept = true): BodySink & { got: string; ended: boolean; accept: boolean } {
  const s = {
    got: "",
    ended: false,
    accept,
    write(c: Uint8Array) {
      s.got += Buffer.from(c).toString();
      return s.accept;
    },
    end() {
      s.ended = true;
    },
  };
  return s;
}

const b = (x: string) => Buffer.from(x);

function body(recordLimit: number) {
  const source = { paused: false };
  const rb = new RequestBody({ recordLimit, pauseSource: () => (source.paused = true), resumeSource: () => (source.paused = false) });
  return { rb, source };
}

describe("RequestBody", () => {
  test("bytes that came before a try are delivered first, then live ones, then the end", () => {
    const { rb } = body(1024);
    rb.push(b("ab"));
    const s = sink();
    expect(rb.attach(s)).toBe(true);
    expect(s.got).toBe("ab");
    rb.push(b("cd"));
    rb.finish();
    expect(s.got).toBe("abcd");
    expect(s.ended).toBe(true);
  });

  test("a retry gets the whole body again while it was kept", async () => {
    const { rb } = body(1024);
    const first = sink();
    rb.attach(first);
    rb.push(b("hello "));
    rb.push(b("world"));
    rb.finish();
    rb.detach();
    expect(rb.replayable).toBe(true);
    const second = sink();
    expect(rb.attach(second)).toBe(true);
    expect(second.got).toBe("hello world");
    expect(second.ended).toBe(true);
    expect((await rb.complete())!.map((c) => Buffer.from(c).toString()).join("")).toBe("hello world");
  });

  test("past the record limit, bytes already sent are let go: no replay, no mirror copy", async () => {
    const { rb } = body(4);
    const first = sink();
    rb.attach(first);
    rb.push(b("abc"));
    rb.push(b("defg"));
    rb.finish();
    expect(first.got).toBe("abcdefg");
    rb.detach();
    expect(rb.replayable).toBe(false);
    expect(rb.attach(sink())).toBe(false);
    expect(await rb.complete()).toBeUndefined();
  });

  test("a slow try pauses the client; its drain resumes it", () => {
    const { rb, source } = body(1024);
    const s = sink(false);
    rb.attach(s);
    rb.push(b("x"));
    expect(source.paused).toBe(true);
    rb.push(b("y")); // queued, not written while blocked
    expect(s.got).toBe("x");
    s.accept = true;
    rb.drained();
    expect(s.got).toBe("xy");
    expect(source.paused).toBe(false);
  });

  test("no try yet: the client is paused only past the high-water mark", () => {
    const { rb, source } = body(16 * 1024 * 1024);
    rb.push(Buffer.alloc(100 * 1024));
    expect(source.paused).toBe(false);
    rb.push(Buffer.alloc(200 * 1024));
    expect(source.paused).toBe(true);
    rb.attach(sink());
    expect(source.paused).toBe(false);
  });

  test("discard reads to the end and drops; a failed body completes as undefined", async () => {
    const { rb } = body(1024);
    rb.push(b("a"));
    rb.discard();
    rb.push(b("b"));
    rb.finish();
    expect(rb.done).toBe(true);
    const other = body(1024).rb;
    other.push(b("a"));
    other.fail(new Error("client gone"));
    expect(await other.complete()).toBeUndefined();
  });
});
