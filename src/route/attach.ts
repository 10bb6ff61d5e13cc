/**
 * Which HTTPRoutes apply to traffic for one Service port (GAMMA, GEP-1426), as Istio waypoints apply them:
 * - A route attaches through a parentRef of kind Service, group "" (or "core"), naming the Service (the
 *   parentRef namespace defaults to the route's). `port` limits it to that Service port; `sectionName`
 *   names a Service port by its name.
 * - Producer routes live in the Service's namespace and apply to every caller. Consumer routes live in
 *   the caller's namespace; when a caller's namespace has any for this Service, they replace the
 *   producer routes for that caller.
 * - No route attached: the request goes to the Service itself (the "default"). Routes attached but none
 *   matching: 404.
 */
import type { HttpRoute, ObjectRef, RegistryHost, Service, ServiceEntry } from "../model/mod.ts";

/** Does this parentRef (of a route in `routeNamespace`) attach the route to `service` port `port`? */
export function parentRefAttaches(ref: ObjectRef, routeNamespace: string, service: Service, port: number): boolean {
  if (ref.kind !== "Service") return false;
  const group = ref.group ?? "";
  if (group !== "" && group !== "core") return false;
  if ((ref.namespace || routeNamespace) !== service.namespace || ref.name !== service.name) return false;
  if (ref.port !== undefined && ref.port !== port) return false;
  if (ref.sectionName !== undefined) {
    const named = service.ports.find((p) => p.name === ref.sectionName);
    if (!named || named.port !== port) return false;
  }
  return true;
}

/**
 * The routes that decide requests to `service` on `port`, for a caller in `sourceNamespace` (absent:
 * producer routes only, which is what a waypoint serving the Service applies to everyone).
 *
 * @example
 * routesForService(model.httpRoutes, productApi, 8000) // producer routes attached to product-api:8000
 */
export function routesForService(
  routes: HttpRoute[],
  service: Service,
  port: number,
  options: { sourceNamespace?: string } = {},
): HttpRoute[] {
  const attached = routes.filter((r) => r.parentRefs.some((p) => parentRefAttaches(p, r.namespace, service, port)));
  const src = options.sourceNamespace;
  if (src !== undefined && src !== service.namespace) {
    const consumer = attached.filter((r) => r.namespace === src);
    if (consumer.length > 0) return consumer;
  }
  return attached.filter((r) => r.namespace === service.namespace);
}

const NETWORKING_GROUP = "networking.istio.io";

function namesEntry(ref: { group?: string; kind?: string; name: string; namespace?: string }, ns: string, se: ServiceEntry): boolean {
  return ref.kind === "ServiceEntry" && ref.group === NETWORKING_GROUP && ref.name === se.name && (ref.namespace || ns) === se.namespace;
}

/**
 * The HTTPRoutes attached to a ServiceEntry (a parentRef of kind ServiceEntry, group networking.istio.io),
 * restated as routes of `svc`, the Service made from it (model entryService): the parentRef names that
 * Service, and a backendRef naming the entry (kind ServiceEntry, or kind Hostname with the host), or a
 * rule with none, goes to it, on `port` unless the backendRef names another.
 */
export function routesForServiceEntry(routes: HttpRoute[], at: RegistryHost, svc: Service, port: number): HttpRoute[] {
  const se = at.entry;
  const asService: ObjectRef = { group: "", kind: "Service", name: svc.name, namespace: svc.namespace };
  return routes
    .filter((r) => r.parentRefs.some((p) => namesEntry(p, r.namespace, se)))
    .map((r) => ({
      ...r,
      parentRefs: r.parentRefs.filter((p) => namesEntry(p, r.namespace, se)).map((p) => ({
        ...asService,
        ...(p.port ? { port: p.port } : {}),
        ...(p.sectionName ? { sectionName: p.sectionName } : {}),
      })),
      rules: r.rules.map((rule) => ({
        ...rule,
        backendRefs: (rule.backendRefs.length ? rule.backendRefs : [{ kind: "ServiceEntry", group: NETWORKING_GROUP, name: se.name, namespace: se.namespace }]).map((b) =>
          namesEntry(b, r.namespace, se) || (b.kind === "Hostname" && b.name === at.host)
            ? { ...b, group: "", kind: "Service", name: svc.name, namespace: svc.namespace, port: b.port ?? port }
            : b
        ),
      })),
    }));
}
