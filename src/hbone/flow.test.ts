import { describe, expect, test } from "bun:test";
import { type FlowState, growSendWindow, receiveBytes, releaseBytes, sendable, spend } from "./flow.ts";

const w = (sendWindow: number, recvWindow = 100, recvUnacked = 0): FlowState => ({ sendWindow, recvWindow, recvUnacked });

describe("flow control accounting", () => {
  test("receiving within and beyond the window", () => {
    const s = w(0, 100);
    expect(receiveBytes(s, 60)).toBe(true);
    expect(receiveBytes(s, 40)).toBe(true);
    expect(s.recvWindow).toBe(0);
    expect(receiveBytes(s, 1)).toBe(false);
  });

  const release: [string, number[], number[], number][] = [
    // [name, bytes released in turn, increments expected, window size]
    ["below a quarter: nothing yet", [10, 10], [0, 0], 100],
    ["a quarter reached: everything waiting goes back", [10, 15], [0, 25], 100],
    ["one big release", [400], [400], 1000],
    ["batches", [100, 100, 100, 100], [0, 0, 0, 400], 1600],
  ];
  for (const [name, steps, incs, size] of release) {
    test(`release: ${name}`, () => {
      const s = w(0, 0);
      const got = steps.map((n) => releaseBytes(s, n, size));
      expect(got).toEqual(incs);
      expect(s.recvWindow).toBe(incs.reduce((a, b) => a + b, 0));
      expect(s.recvUnacked).toBe(steps.reduce((a, b) => a + b, 0) - s.recvWindow);
    });
  }

  test("sending is limited by both windows and never negative", () => {
    const conn = w(1000);
    const stream = w(300);
    expect(sendable(conn, stream, 500)).toBe(300);
    spend(conn, stream, 300);
    expect([conn.sendWindow, stream.sendWindow]).toEqual([700, 0]);
    expect(sendable(conn, stream, 10)).toBe(0);
    expect(growSendWindow(stream, -50)).toBe(true); // a SETTINGS decrease can make it negative
    expect(sendable(conn, stream, 10)).toBe(0);
    expect(growSendWindow(stream, 100)).toBe(true);
    expect(sendable(conn, stream, 10)).toBe(10);
  });

  test("a window above 2^31-1 is an overflow", () => {
    const s = w(0x7fffffff - 10);
    expect(growSendWindow(s, 10)).toBe(true);
    expect(growSendWindow(s, 1)).toBe(false);
  });
});
