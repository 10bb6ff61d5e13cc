/**
 * A small Prometheus registry. Hot paths keep a handle to a labelled series (`counter.labels({...})`)
 * and bump a number; nothing is formatted until /metrics is scraped. Text exposition format 0.0.4.
 */
export type LabelValues = Record<string, string>;

interface Series {
  labels: string; // rendered `{a="1",b="2"}`
}

function renderLabels(names: readonly string[], values: LabelValues): string {
  if (!names.length) return "";
  return "{" + names.map((n) => `${n}="${escapeLabel(values[n] ?? "")}"`).join(",") + "}";
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

abstract class Metric<S extends Series> {
  protected series = new Map<string, S>();
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {}
  protected abstract create(labels: string): S;
  protected get(values: LabelValues): S {
    const key = renderLabels(this.labelNames, values);
    let s = this.series.get(key);
    if (!s) {
      s = this.create(key);
      this.series.set(key, s);
    }
    return s;
  }
  /** Drops every series (tests). */
  reset(): void {
    this.series.clear();
  }
  abstract render(out: string[]): void;
}

export interface CounterSeries extends Series {
  value: number;
}

export class Counter extends Metric<CounterSeries> {
  protected create(labels: string): CounterSeries {
    return { labels, value: 0 };
  }
  /** A handle to one labelled series; keep it on the hot path. */
  labels(values: LabelValues = {}): { inc(n?: number): void; get(): number } {
    const s = this.get(values);
    return { inc: (n = 1) => void (s.value += n), get: () => s.value };
  }
  inc(values: LabelValues = {}, n = 1): void {
    this.get(values).value += n;
  }
  value(values: LabelValues = {}): number {
    return this.series.get(renderLabels(this.labelNames, values))?.value ?? 0;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.series.values()) out.push(`${this.name}${s.labels} ${s.value}`);
  }
}

export class Gauge extends Metric<CounterSeries> {
  protected create(labels: string): CounterSeries {
    return { labels, value: 0 };
  }
  set(values: LabelValues, v: number): void {
    this.get(values).value = v;
  }
  inc(values: LabelValues = {}, n = 1): void {
    this.get(values).value += n;
  }
  dec(values: LabelValues = {}, n = 1): void {
    this.get(values).value -= n;
  }
  value(values: LabelValues = {}): number {
    return this.series.get(renderLabels(this.labelNames, values))?.value ?? 0;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const s of this.series.values()) out.push(`${this.name}${s.labels} ${s.value}`);
  }
}

interface HistogramSeries extends Series {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
  }
  protected create(labels: string): HistogramSeries {
    return { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(values: LabelValues, v: number): void {
    const s = this.get(values);
    s.sum += v;
    s.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
  }
  /** A handle to one labelled series; keep it on the hot path (no label rendering per observation). */
  labels(values: LabelValues = {}): { observe(v: number): void } {
    const s = this.get(values);
    const buckets = this.buckets;
    return {
      observe(v: number) {
        s.sum += v;
        s.count++;
        for (let i = 0; i < buckets.length; i++) if (v <= buckets[i]!) s.counts[i]!++;
      },
    };
  }
  count(values: LabelValues = {}): number {
    return this.series.get(renderLabels(this.labelNames, values))?.count ?? 0;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const s of this.series.values()) {
      const base = s.labels ? s.labels.slice(1, -1) + "," : "";
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{${base}le="${b}"} ${s.counts[i]}`));
      out.push(`${this.name}_bucket{${base}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${s.labels} ${s.sum}`, `${this.name}_count${s.labels} ${s.count}`);
    }
  }
}

/** Istio's default request-duration buckets (milliseconds). */
export const DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];
export const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

export class Registry {
  #metrics = new Map<string, Metric<Series>>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(name, () => new Counter(name, help, labelNames)) as Counter;
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#register(name, () => new Gauge(name, help, labelNames)) as Gauge;
  }
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.#register(name, () => new Histogram(name, help, labelNames, buckets)) as Histogram;
  }
  /** Same name twice returns the same metric, so two roles in one process share a series. */
  #register(name: string, make: () => Metric<Series>): Metric<Series> {
    let m = this.#metrics.get(name);
    if (!m) {
      m = make();
      this.#metrics.set(name, m);
    }
    return m;
  }
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics.values()) m.render(out);
    return out.join("\n") + "\n";
  }
}
