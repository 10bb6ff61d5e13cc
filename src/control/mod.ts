/**
 * The control role: the CA (bootstrap client certificates and workload CSRs under node authorization) and
 * config distribution (watched mesh.yaml -> versioned per-proxy snapshots and deltas), both on 15012.
 *
 * DATA_DIR holds the CA (see src/identity/ca.ts), root-cert.pem, the token-signing key, and:
 *   control-state.json      the last configuration version, so versions keep growing across restarts
 *   control-last-good.json  the last valid configuration, served after a restart if mesh.yaml is invalid then
 *
 * Local admin API (15000, localhost): GET /control/status (what `mesh status` shows), POST
 * /control/config/refresh, and root rotation: POST /control/root/add, /control/root/activate,
 * /control/root/remove?root=<sha256 fingerprint>.
 */
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { logger, splitAddr, writeFileAtomic } from "../core/mod.ts";
import type { RoleContext, RoleHandle } from "../admin/mod.ts";
import { CertificateAuthority, verifyBootstrapToken } from "../identity/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { type StatusReport, XdsServer } from "../xds/mod.ts";
import { controlApi } from "./api.ts";
import { type KubernetesOptions, KubernetesPlane } from "../kube/mod.ts";
import { type ConfigError, ConfigSource, type ConfigUpdate, type ModelSource } from "./config_source.ts";
import { ControlListener } from "./listener.ts";
import { FlowStore } from "./flows.ts";
import { startUi, type UiServer } from "./ui.ts";

const log = logger("control");

export interface ControlOptions {
  /** mesh.yaml file or directory (file mode) */
  config?: string;
  /** read the cluster instead of a file */
  kubernetes: boolean;
  kubeconfig?: string;
  dataDir: string;
  /** "ADDR:15012" */
  listen: string;
  /** Debounce of config file events (default 50 ms). */
  debounceMs?: number;
  /** Lifetime of control-plane client certificates (default 1 h). */
  clientCertTtlSeconds?: number;
  /**
   * The traffic map: "HOST:PORT" or "unix:PATH" (`mesh run` defaults to 127.0.0.1:15014); absent, none.
   * A port already taken is logged, and the control role serves without the map.
   */
  uiListen?: string;
  /** --kubernetes: settings for tests (API connection environment, timings, waypoint image). */
  kube?: Partial<Omit<KubernetesOptions, "kubeconfig" | "onUpdate" | "onError">>;
}

/** The running control role. Beyond RoleHandle, tests and the lab reach the parts directly. */
export interface ControlHandle extends RoleHandle {
  /** The bound 15012 port (useful with port 0). */
  readonly port: number;
  readonly ca: CertificateAuthority;
  readonly xds: XdsServer;
  /** Flows the proxies reported (the traffic map and `mesh observe` read them). */
  readonly flows: FlowStore;
  /** Where the traffic map is served, if it is. */
  readonly uiUrl?: string;
  status(): StatusReport;
  /** The configuration being served (undefined until a valid one was loaded): `mesh run --role all` plans from it. */
  model(): MeshModel | undefined;
  /** Re-reads the configuration now instead of waiting for the file watcher. */
  refresh(): Promise<void>;
}

interface PersistedState {
  lastVersion: number;
}

export async function startControl(opts: ControlOptions, ctx: RoleContext): Promise<ControlHandle> {
  if (opts.kubernetes && opts.config) throw new MeshError(ErrorCode.Usage, "--role control takes --config FILE|DIR or --kubernetes, not both");
  if (!opts.kubernetes && !opts.config) throw new MeshError(ErrorCode.Usage, "--role control needs --config FILE|DIR or --kubernetes");
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const statePath = join(opts.dataDir, "control-state.json");
  const lastGoodPath = join(opts.dataDir, "control-last-good.json");
  const persisted = readJson<PersistedState>(statePath);

  const m = {
    csr: ctx.metrics.counter("mesh_control_csr_total", "Certificate signing requests by result", ["result"]),
    configErrors: ctx.metrics.counter("mesh_control_config_errors_total", "Configuration loads refused as invalid"),
    version: ctx.metrics.gauge("mesh_control_config_version", "Latest configuration version"),
  };
  for (const result of ["issued", "refused", "invalid"]) m.csr.inc({ result }, 0);
  m.configErrors.inc({}, 0);

  const xds = new XdsServer({ metrics: ctx.metrics, firstVersion: (persisted?.lastVersion ?? 0) + 1 });
  let served: MeshModel | undefined;
  let ca: CertificateAuthority | undefined;
  let listener: ControlListener | undefined;
  let lastError: ConfigError | undefined;
  let warnings = 0;
  let stopped = false;

  // Building a version of a big mesh leaves a lot of garbage (YAML trees, the previous model); collecting it
  // once the pushes are out keeps the resident size near the live size instead of the high-water mark.
  let gcTimer: ReturnType<typeof setTimeout> | undefined;
  const collectSoon = () => {
    if (gcTimer) return; // throttled, not postponed: a steady stream of changes still gets collected
    gcTimer = setTimeout(() => {
      gcTimer = undefined;
      Bun.gc(true);
    }, 1000);
    gcTimer.unref?.();
  };
  const publish = (model: MeshModel, changeStartedAt?: number) => {
    if (!ca) return;
    const version = xds.setConfig(model, ca.trustBundlePem, { changeStartedAt });
    m.version.set({}, version);
    // Synchronously, before anyone can ACK it: a restart (even after SIGKILL) must continue after it, so
    // versions stay monotonic across control-plane instances.
    writeJsonAtomicSync(statePath, { lastVersion: version } satisfies PersistedState);
    collectSoon();
  };

  const onUpdate = (u: ConfigUpdate) => {
    if (ca && u.model.meshConfig.trustDomain !== ca.trustDomain) {
      const e: ConfigError = {
        at: new Date(),
        diagnostics: [{
          file: opts.config ?? "kubernetes",
          line: 0,
          col: 0,
          severity: "error",
          message: `trustDomain changed from "${ca.trustDomain}" to "${u.model.meshConfig.trustDomain}": every certificate would change identity; restart the control role (and re-issue tokens) to apply it`,
          rule: "trust-domain-change",
        }],
      };
      onError(e);
      return;
    }
    lastError = undefined;
    warnings = u.warnings.length;
    served = u.model;
    publish(u.model, u.changeStartedAt);
    saveLastGood(u.model);
  };
  // The cluster (src/kube) or a file: the same model, the same callbacks.
  let kube: KubernetesPlane | undefined;
  let source: ModelSource;
  if (opts.kubernetes) {
    const k = new KubernetesPlane({
      kubeconfig: opts.kubeconfig,
      onUpdate,
      onError: (e) => onError(e),
      debounceMs: opts.debounceMs,
      metrics: ctx.metrics,
      port: splitAddr(opts.listen, 15012).port,
      ...opts.kube,
    });
    kube = k;
    source = { path: k.source.path, start: () => k.start(), refresh: () => k.source.refresh(), close: () => k.close() };
  } else {
    source = new ConfigSource({ path: opts.config!, debounceMs: opts.debounceMs, onUpdate, onError: (e) => onError(e) });
  }
  // Serializing a big model takes tens of milliseconds: not on the push path, and once per burst.
  let saveTimer: ReturnType<typeof setTimeout> | undefined;
  function saveLastGood(model: MeshModel) {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => void writeJsonAtomic(lastGoodPath, model), 1000);
  }
  function onError(e: ConfigError) {
    lastError = e;
    m.configErrors.inc();
  }

  await source.start();
  if (!served) {
    const saved = readJson<MeshModel>(lastGoodPath);
    if (saved?.meshConfig && Array.isArray(saved.workloads)) {
      served = saved;
      log.warn("configuration invalid at start: serving the last good one saved in the data dir", { file: lastGoodPath });
    }
  }

  const trustDomain = served?.meshConfig.trustDomain ?? "cluster.local";
  ca = await CertificateAuthority.open(opts.dataDir, {
    trustDomain,
    defaultTtlSeconds: served?.meshConfig.certTtlSeconds,
  });
  const theCa = ca;

  const serverNames = () => {
    const { hostname: host } = splitAddr(opts.listen, 15012);
    // On Kubernetes proxies dial the control role's Service by name.
    const names = ["localhost", "127.0.0.1", "::1", hostname(), ...(kube?.serverNames ?? [])];
    if (host && host !== "0.0.0.0" && host !== "::") names.unshift(host);
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.push(a.address.replace(/%.*$/, ""));
    return names;
  };
  const serving = async () => {
    const c = await theCa.serverCertificate(serverNames());
    return { cert: c.chainPem, key: c.keyPem, ca: theCa.trustBundlePem, notAfter: c.notAfter };
  };
  let tls = await serving();

  const status = (): StatusReport => ({
    version: xds.latestVersion ?? 0,
    versionAt: (xds.latestAt ?? new Date(0)).toISOString(),
    config: {
      source: source.path,
      lastError: lastError && { at: lastError.at.toISOString(), diagnostics: lastError.diagnostics },
      warnings,
      workloads: served?.workloads.length ?? 0,
      services: served?.services.length ?? 0,
    },
    proxies: xds.status().sort((a, b) => a.id.localeCompare(b.id)),
    trustBundle: theCa.trustBundle.map((pem) => {
      const x = new X509Certificate(pem);
      return { subject: x.subject.replace(/\n/g, ", "), notAfter: new Date(x.validTo).toISOString() };
    }),
  });

  const flows = new FlowStore({
    isWaypointIdentity: (id) => served?.waypoints.some((w) => w.identity === id) ?? false,
  });
  const app = controlApi({
    ca: () => theCa,
    xds,
    model: () => served,
    status,
    csrTotal: m.csr,
    clientCertTtlSeconds: opts.clientCertTtlSeconds ?? 3600,
    serviceAccountToken: kube && ((t: string) => kube!.authenticate(t)),
    flows: { store: flows, received: ctx.metrics.counter("mesh_control_flow_records_total", "Flow records received from the proxies") },
  });
  try {
    listener = await ControlListener.start({ listen: opts.listen, tls, trustDomain: theCa.trustDomain, app, xds });
  } catch (e) {
    await source.close();
    throw new MeshError(ErrorCode.Usage, `Cannot listen on ${opts.listen}: ${(e as Error).message}`, { cause: e });
  }
  const theListener = listener;
  if (served) publish(served);
  // The first change of a big mesh would run the build and delta paths cold: rehearse them once, off the clock.
  const warmTimer = setTimeout(() => {
    if (stopped || !served || served.workloads.length < 1000) return;
    const t0 = performance.now();
    source.warmUp?.();
    XdsServer.warmUp(served);
    log.debug("warmed up", { ms: Math.round(performance.now() - t0) });
  }, 500);
  warmTimer.unref?.();
  // Proxies on the cluster mount the trust bundle from a ConfigMap the control role keeps current.
  kube?.setTrustBundle(theCa.trustBundlePem);

  // The serving certificate is renewed at half its lifetime, and re-issued when the roots change.
  let renewTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleRenewal = () => {
    clearTimeout(renewTimer);
    const ms = Math.min(2 ** 31 - 1, Math.max(1000, (tls.notAfter.getTime() - Date.now()) / 2));
    renewTimer = setTimeout(() => void renewServing(), ms);
  };
  const renewServing = async () => {
    if (stopped) return;
    try {
      tls = await serving();
      theListener.setTls(tls);
      log.info("serving certificate renewed", { notAfter: tls.notAfter.toISOString() });
    } catch (e) {
      log.error("serving certificate renewal failed", { error: String(e) });
    }
    scheduleRenewal();
  };
  scheduleRenewal();
  const unsubscribe = theCa.onTrustBundleChange(() => {
    log.info("trust bundle changed: pushing it and renewing the serving certificate", { roots: theCa.trustBundle.length });
    if (served) publish(served);
    kube?.setTrustBundle(theCa.trustBundlePem);
    void renewServing();
  });

  ctx.admin.get("/control/status", (c) => c.json(status()));
  ctx.admin.post("/control/config/refresh", async (c) => {
    await source.refresh();
    return c.json({ version: xds.latestVersion ?? 0, lastError: lastError?.diagnostics ?? null });
  });
  ctx.admin.post("/control/root/:step", async (c) => {
    try {
      switch (c.req.param("step")) {
        case "add":
          return c.json({ root: await theCa.addRoot() });
        case "activate":
          return c.json({ root: await theCa.activateRoot() });
        case "remove":
          return c.json({ removed: theCa.removeRoot(c.req.query("root") ?? "") });
        default:
          return c.json({ error: "Use add, activate or remove" }, 404);
      }
    } catch (e) {
      return c.json({ error: (e as Error).message, code: (e as MeshError).code }, 400);
    }
  });

  let ui: UiServer | undefined;
  if (opts.uiListen) {
    try {
      ui = startUi({
        listen: opts.uiListen,
        flows,
        model: () => served,
        verifyToken: (t) => verifyBootstrapToken(theCa, t),
      });
    } catch (e) {
      log.error("the traffic map is not served", { listen: opts.uiListen, error: (e as Error).message });
    }
  }

  log.info("control role started", { listen: opts.listen, port: theListener.port, config: source.path, trustDomain: theCa.trustDomain });

  return {
    name: "control",
    port: theListener.port,
    ca: theCa,
    xds,
    flows,
    uiUrl: ui?.url,
    status,
    model: () => served,
    refresh: () => source.refresh(),
    readiness() {
      if (stopped) return { ready: false, reasons: ["stopping"] };
      if (!served) {
        const first = lastError?.diagnostics.find((d) => d.severity === "error");
        const where = first ? ` (${first.file}${first.line ? `:${first.line}:${first.col}` : ""}: ${first.message})` : "";
        return { ready: false, reasons: [`no valid configuration yet${where}`] };
      }
      return { ready: true, reasons: [] };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(renewTimer);
      clearTimeout(gcTimer);
      clearTimeout(warmTimer);
      if (saveTimer) {
        clearTimeout(saveTimer);
        if (served) await writeJsonAtomic(lastGoodPath, served);
      }
      unsubscribe();
      await ui?.stop();
      await source.close();
      xds.closeAll();
      await theListener.close();
      log.info("control role stopped");
    },
  };
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

const writes = new Map<string, Promise<void>>();
/** Atomic (temp file + rename), and serialized per path so an older write never lands last. */
function writeJsonAtomicSync(path: string, value: unknown): void {
  try {
    writeFileAtomic(path, JSON.stringify(value));
  } catch (e) {
    log.warn("cannot write state file", { path, error: String(e) });
  }
}

function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const prev = writes.get(path) ?? Promise.resolve();
  const next = prev.then(() => writeFileAtomic(path, JSON.stringify(value))).catch((e) => log.warn("cannot write state file", { path, error: String(e) }));
  writes.set(path, next);
  return next;
}
