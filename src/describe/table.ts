/** Plain text tables for terminals: columns padded to their widest cell, the last one left ragged. */
export function table(rows: string[][]): string {
  if (!rows.length) return "";
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join("  ").trimEnd()).join("\n") + "\n";
}
