import { expect, test } from "bun:test";
import { Registry } from "./metrics.ts";

test("counters, gauges and histograms render in Prometheus text format", () => {
  const r = new Registry();
  const c = r.counter("istio_tcp_connections_opened_total", "Opened", ["reporter", "source_principal"]);
  c.labels({ reporter: "destination", source_principal: 'a"b' }).inc();
  c.inc({ reporter: "destination", source_principal: 'a"b' }, 2);
  r.gauge("up", "Up").set({}, 1);
  const h = r.histogram("d", "Duration", ["code"], [1, 10]);
  h.observe({ code: "200" }, 5);
  const text = r.render();
  expect(text).toContain('istio_tcp_connections_opened_total{reporter="destination",source_principal="a\\"b"} 3');
  expect(text).toContain("up 1");
  expect(text).toContain('d_bucket{code="200",le="1"} 0');
  expect(text).toContain('d_bucket{code="200",le="10"} 1');
  expect(text).toContain('d_bucket{code="200",le="+Inf"} 1');
  expect(text).toContain('d_sum{code="200"} 5');
  expect(r.counter("istio_tcp_connections_opened_total", "x", [])).toBe(c);
});
