// The traffic map's script: the graph (cytoscape, laid out by its force-directed "cose" layout), the live
// flow table (server-sent events), filters, and the detail of a flow (with `mesh explain`'s reasoning for a
// denied one) or of an edge. Served by the control role; no build step.
import cytoscape from "/assets/cytoscape.mjs";

const COLORS = { mtls: "#2e7d32", plaintext: "#ef6c00", denied: "#c62828", serves: "#9aa3b5" };
const MAX_ROWS = 300;
const $ = (id) => document.getElementById(id);
const state = { window: "5m", namespace: "", workload: "", verdict: "", graph: null, flows: [], namespaces: new Set(), nodeKey: "" };

const cy = cytoscape({
  container: $("map"),
  wheelSensitivity: 0.3,
  style: [
    { selector: "node", style: { label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4, width: 30, height: 30, "background-color": "#5b6b8c", color: "#1d2433" } },
    { selector: "node[kind = 'service']", style: { shape: "round-rectangle", "background-color": "#3f7fbf", width: 40, height: 26 } },
    { selector: "node[kind = 'waypoint']", style: { shape: "diamond", "background-color": "#7e57c2" } },
    { selector: "node[kind = 'external']", style: { shape: "hexagon", "background-color": "#8d6e63" } },
    { selector: "node[kind = 'namespace']", style: { shape: "round-rectangle", "background-color": "#eef1f6", "background-opacity": 1, "border-color": "#c5cbd6", "border-width": 1, "text-valign": "top", "text-halign": "center", "font-size": 12, "font-weight": 600, color: "#445", padding: 18 } },
    { selector: "edge", style: { width: "data(width)", "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 1.1, label: "data(label)", "font-size": 10, "text-background-color": "#fff", "text-background-opacity": 0.85, "text-background-padding": 2, "text-wrap": "wrap", "text-rotation": "none" } },
    { selector: "edge.mtls", style: { "line-color": COLORS.mtls, "target-arrow-color": COLORS.mtls } },
    { selector: "edge.plaintext", style: { "line-color": COLORS.plaintext, "target-arrow-color": COLORS.plaintext } },
    { selector: "edge.denied", style: { "line-color": COLORS.denied, "target-arrow-color": COLORS.denied } },
    { selector: "edge.serves", style: { "line-color": COLORS.serves, "target-arrow-color": COLORS.serves, "line-style": "dashed", width: 1.5, label: "waypoint", "font-size": 9, color: "#778" } },
    { selector: ":selected", style: { "overlay-color": "#1a73e8", "overlay-opacity": 0.15 } },
  ],
});
// For people poking at the page from the console, and for the end-to-end test.
window.meshMap = { cy, state };

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (r.status === 401) {
    location.reload();
    throw new Error("signed out");
  }
  return await r.json();
}

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const short = (nsName) => (nsName ?? "").slice((nsName ?? "").indexOf("/") + 1);
const fmtRate = (r) => (r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2));

/** An edge's class: denied if anything was denied, else plaintext if anything was, else mTLS. */
export function edgeClass(e) {
  return e.denied > 0 ? "denied" : e.plaintext > 0 ? "plaintext" : "mtls";
}

function edgeLabel(e) {
  const first = [`${fmtRate(e.rate)}/s`];
  if (e.denied) first.push(`${e.denied} denied`);
  const second = [e.plaintext === 0 ? "mTLS" : e.mtls === 0 ? "plaintext" : `mTLS ${e.mtls} · plaintext ${e.plaintext}`];
  if (e.p99Ms !== undefined) second.push(`p99 ${e.p99Ms} ms`);
  if (e.waypoints.length) second.push("via waypoint");
  return [first.join(" · "), second.join(" · ")].filter(Boolean).join("\n");
}

function nodeNamespace(n) {
  return n.kind === "external" ? "" : n.namespace ?? "";
}

function visible(g) {
  const ns = state.namespace;
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const edges = g.edges.filter((e) => !ns || nodeNamespace(byId.get(e.source) ?? {}) === ns || nodeNamespace(byId.get(e.target) ?? {}) === ns);
  const keep = new Set(edges.flatMap((e) => [e.source, e.target, ...e.waypoints.map((w) => `waypoint:${w}`)]));
  return { nodes: g.nodes.filter((n) => keep.has(n.id)), edges };
}

function drawGraph(g) {
  const { nodes, edges } = visible(g);
  const maxRate = Math.max(0.001, ...edges.map((e) => e.rate));
  const els = [];
  const groups = new Set();
  for (const n of nodes) {
    const ns = n.kind === "external" ? "external" : n.namespace;
    if (ns) groups.add(ns);
    els.push({ group: "nodes", data: { id: n.id, label: n.label, kind: n.kind, parent: ns ? `ns:${ns}` : undefined } });
  }
  for (const ns of groups) els.push({ group: "nodes", data: { id: `ns:${ns}`, label: ns === "external" ? "outside the mesh" : `namespace ${ns}`, kind: "namespace" } });
  for (const e of edges) {
    els.push({ group: "edges", classes: edgeClass(e), data: { id: e.id, source: e.source, target: e.target, label: edgeLabel(e), width: 2 + 5 * Math.sqrt(e.rate / maxRate), edge: e } });
    for (const w of e.waypoints) {
      const id = `serves:${w}->${e.target}`;
      if (!els.some((x) => x.data.id === id)) els.push({ group: "edges", classes: "serves", data: { id, source: `waypoint:${w}`, target: e.target, width: 1.5 } });
    }
  }
  const key = els.map((x) => x.data.id).sort().join(",");
  if (key !== state.nodeKey) {
    state.nodeKey = key;
    cy.elements().remove();
    cy.add(els);
    // Who calls whom, top to bottom: clients (and waypoints) first, what they call below.
    cy.layout({ name: "breadthfirst", directed: true, animate: false, padding: 30, spacingFactor: 1.3, nodeDimensionsIncludeLabels: true }).run();
  } else {
    for (const x of els) {
      if (x.group !== "edges") continue;
      const el = cy.getElementById(x.data.id);
      el.data(x.data);
      el.classes(x.classes);
    }
  }
}

function drawEdges(g) {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const name = (id) => {
    const n = byId.get(id);
    return n ? (n.namespace && n.kind !== "external" ? `${n.namespace}/${n.label}` : n.label) : id;
  };
  const rows = visible(g).edges.map((e) => {
    const statuses = Object.entries(e.statuses).map(([s, n]) => `${s}×${n}`).join(" ");
    const lat = e.p50Ms !== undefined ? `${e.p50Ms} / ${e.p99Ms}` : "-";
    const sec = [e.mtls ? `mTLS ${e.mtls}` : "", e.plaintext ? `plaintext ${e.plaintext}` : ""].filter(Boolean).join(", ");
    return `<tr class="${e.denied ? "denied" : ""}" data-edge="${esc(e.id)}"><td>${esc(name(e.source))}</td><td>${esc(name(e.target))}</td><td>${esc(e.waypoints.map(short).join(", ") || "-")}</td><td>${e.flows}</td><td>${fmtRate(e.rate)}</td><td>${e.denied}</td><td>${esc(statuses || "-")}</td><td>${lat}</td><td>${esc(sec)}</td></tr>`;
  });
  $("edges").tBodies[0].innerHTML = rows.join("") || `<tr><td colspan="9" class="muted">No traffic in this window yet.</td></tr>`;
  const over = g.overflowFlows ? `, ${g.overflowFlows} beyond the edge budget` : "";
  const dropped = g.droppedByProxies ? `, ${g.droppedByProxies} dropped by proxies over budget` : "";
  $("stats").textContent = `${g.flows} flows in ${state.window}${over}${dropped}`;
}

async function refreshGraph() {
  try {
    const g = await api(`/api/graph?window=${state.window}`);
    state.graph = g;
    for (const n of g.nodes) if (n.namespace && n.kind !== "external") state.namespaces.add(n.namespace);
    fillNamespaces();
    drawGraph(g);
    drawEdges(g);
  } catch (e) {
    $("stats").textContent = `graph unavailable: ${e.message}`;
  }
}

function fillNamespaces() {
  const sel = $("namespace");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const ns of [...state.namespaces].sort()) {
    if (have.has(ns)) continue;
    const o = document.createElement("option");
    o.value = o.textContent = ns;
    sel.appendChild(o);
  }
}

// ---- the flow table ----

function peer(p, dst) {
  const who = (dst && p.service) || p.workload || (p.identity ?? "").replace(/^spiffe:\/\/[^/]+\//, "") || p.address || "unknown";
  return dst && p.port !== undefined && (p.service || !p.workload) ? `${who}:${p.port}` : who;
}

function flowRow(f) {
  const what = f.l7 ? `${f.method ?? ""} ${f.path ?? ""} ${f.status ?? ""}` : `tcp ${f.bytesIn}/${f.bytesOut} B`;
  const time = new Date(f.time).toISOString().slice(11, 23);
  return `<tr class="${f.verdict}" data-id="${f.id}" data-verdict="${f.verdict}" data-policy="${esc(f.policy ?? "")}" data-trace="${esc(f.traceId ?? "")}">` +
    `<td>${time}</td><td>${esc(f.proxy)}</td><td>${esc(peer(f.src, false))}</td><td>${esc(peer(f.dst, true))}</td><td>${esc(what)}</td>` +
    `<td>${f.verdict}${f.count > 1 ? ` ×${f.count}` : ""}</td><td>${f.mtls ? "mTLS" : "plaintext"}</td><td class="${f.policy ? "policy" : ""}">${esc(f.policy ?? "")}</td><td class="mono">${esc(f.traceId ?? "")}</td></tr>`;
}

function drawFlows() {
  $("flows").tBodies[0].innerHTML = state.flows.slice().reverse().map(flowRow).join("") || `<tr><td colspan="9" class="muted">No flows yet.</td></tr>`;
}

function filterQuery() {
  const p = new URLSearchParams();
  if (state.namespace) p.set("namespace", state.namespace);
  if (state.workload) p.set("workload", state.workload);
  if (state.verdict) p.set("verdict", state.verdict);
  return p.toString();
}

let source;
async function followFlows() {
  source?.close();
  const q = filterQuery();
  const first = await api(`/api/flows?${q}&limit=${MAX_ROWS}`);
  state.flows = first.flows;
  drawFlows();
  source = new EventSource(`/api/flows/stream?${q}`);
  source.onopen = () => ($("flows-state").textContent = "(live)");
  source.onerror = () => ($("flows-state").textContent = "(reconnecting)");
  let pending = false;
  source.onmessage = (ev) => {
    state.flows.push(JSON.parse(ev.data));
    if (state.flows.length > MAX_ROWS) state.flows.splice(0, state.flows.length - MAX_ROWS);
    // Many flows a second: redraw at most once a frame.
    if (!pending) {
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        drawFlows();
      });
    }
  };
}

// ---- details ----

function dl(rows) {
  return `<dl>${rows.filter(([, v]) => v !== undefined && v !== "" && v !== null).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

function explainCommand(q) {
  if (!q) return "";
  const from = q.from.kind === "identity" ? `${q.from.namespace}/${q.from.serviceAccount}` : `ip:${q.from.address}`;
  const to = q.to.kind === "service" ? `${q.to.name}.${q.to.namespace}:${q.to.port}` : `${q.to.address}:${q.to.port}`;
  return `mesh explain --from ${from} --to ${to}${q.method ? ` --method ${q.method}` : ""}${q.path ? ` --path ${q.path}` : ""}`;
}

async function showFlow(id) {
  const d = $("detail");
  d.innerHTML = "<h2>Loading...</h2>";
  const r = await api(`/api/flows/${id}/explain`);
  const f = r.flow;
  if (!f) {
    d.innerHTML = `<h2>Flow ${esc(id)}</h2><p>${esc(r.error ?? "gone")}</p>`;
    return;
  }
  const what = f.l7 ? `${f.method} ${f.path} → ${f.status}` : `TCP connection`;
  let html = `<h2>${f.verdict === "denied" ? "Denied" : f.verdict === "error" ? "Failed" : "Allowed"}: ${esc(what)}</h2>`;
  html += dl([
    ["proxy", esc(f.proxy)],
    ["source", esc([f.src.workload, f.src.identity, f.src.address].filter(Boolean).join(" · "))],
    ["destination", esc([f.dst.service && `service ${f.dst.service}`, f.dst.workload, f.dst.address && `${f.dst.address}${f.dst.port !== undefined ? `:${f.dst.port}` : ""}`].filter(Boolean).join(" · "))],
    ["waypoint", esc(f.waypoint ?? "")],
    ["policy", f.policy ? `<span class="policy" id="detail-policy">${esc(f.policy)}</span>` : ""],
    ["reason", esc(f.reason ?? "")],
    ["security", f.mtls ? "mTLS" : "plaintext"],
    ["bytes", `${f.bytesIn} in, ${f.bytesOut} out`],
    ["duration", `${f.durationMs} ms`],
    ["trace id", `<span class="mono" id="detail-trace">${esc(f.traceId ?? "")}</span>`],
  ]);
  const x = r.explanation;
  if (x) {
    html += `<h2>What mesh explain says</h2>`;
    html += dl([
      ["decision", `<b id="explain-decision">${esc(x.decision)}</b>${x.status ? ` (${x.status})` : ""}`],
      ["enforced by", esc(x.enforcedBy + (x.waypoint ? ` ${x.waypoint}` : ""))],
      ["policy", x.policy ? `<span class="policy" id="explain-policy">${esc(x.policy)}</span>${x.rule !== null ? ` rule ${x.rule}` : ""}` : "none"],
      ["reason", `<span id="explain-reason">${esc(x.reason)}</span>`],
    ]);
    for (const h of x.hops) html += `<div class="hop${h.decided ? " decided" : ""}"><b>${esc(h.name)}</b><br>${h.steps.map(esc).join("<br>")}</div>`;
    html += `<pre>${esc(explainCommand(r.query))}</pre>`;
  }
  if (r.note) html += `<p class="muted">${esc(r.note)}</p>`;
  d.innerHTML = html;
}

function showEdge(e) {
  const statuses = Object.entries(e.statuses).map(([s, n]) => `${s}: ${n}`).join(", ");
  const denied = Object.entries(e.deniedBy).map(([p, n]) => `<span class="policy">${esc(p)}</span>: ${n}`).join("<br>");
  $("detail").innerHTML = `<h2>${esc(e.source.replace(/^\w+:/, ""))} → ${esc(e.target.replace(/^\w+:/, ""))}</h2>` + dl([
    ["via", esc(e.waypoints.join(", ") || "-")],
    ["flows", `${e.flows} (${fmtRate(e.rate)}/s over ${state.window})`],
    ["allowed", String(e.allowed)],
    ["denied", String(e.denied)],
    ["denied by", denied],
    ["errors", String(e.errors)],
    ["security", `mTLS ${e.mtls}, plaintext ${e.plaintext}`],
    ["bytes", String(e.bytes)],
    ["statuses", esc(statuses)],
    ["latency", e.p50Ms !== undefined ? `p50 ${e.p50Ms} ms, p99 ${e.p99Ms} ms` : ""],
  ]) + `<p class="muted">Filter the flow table by verdict "denied" to see each denied flow and the policy that denied it.</p>`;
}

$("flows").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-id]");
  if (tr) void showFlow(tr.dataset.id);
});
cy.on("tap", "edge", (ev) => {
  const e = ev.target.data("edge");
  if (e) showEdge(e);
});
$("window").addEventListener("change", (ev) => {
  state.window = ev.target.value;
  void refreshGraph();
});
$("namespace").addEventListener("change", (ev) => {
  state.namespace = ev.target.value;
  state.nodeKey = "";
  void refreshGraph();
  void followFlows();
});
$("verdict").addEventListener("change", (ev) => {
  state.verdict = ev.target.value;
  void followFlows();
});
let typing;
$("workload").addEventListener("input", (ev) => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    state.workload = ev.target.value.trim();
    void followFlows();
  }, 300);
});

await refreshGraph();
await followFlows();
setInterval(refreshGraph, 3000);
window.meshMap.ready = true;
