/** Gateway API kinds: Gateway (a waypoint when its class is istio-waypoint) and HTTPRoute. */
import * as v from "valibot";
import { ignored, labels, nonEmpty, port, resource, stringList } from "./common.ts";

const listener = v.strictObject({
  name: nonEmpty,
  port,
  protocol: nonEmpty,
  hostname: v.optional(v.string()),
  tls: ignored,
  allowedRoutes: ignored,
});

export const gatewaySchema = resource(v.strictObject({
  gatewayClassName: v.optional(v.string()),
  listeners: v.optional(v.array(listener)),
  addresses: v.optional(v.array(v.strictObject({ type: v.optional(v.string()), value: nonEmpty }))),
  infrastructure: v.optional(v.strictObject({
    labels: v.optional(labels),
    annotations: v.optional(labels),
    parametersRef: ignored,
  })),
  backendTLS: ignored,
  allowedListeners: ignored,
}));

const parentRef = v.strictObject({
  group: v.optional(v.string()),
  kind: v.optional(v.string()),
  namespace: v.optional(v.string()),
  name: nonEmpty,
  sectionName: v.optional(v.string()),
  port: v.optional(port),
});

const matchType = v.picklist(["Exact", "RegularExpression"]);

const match = v.strictObject({
  path: v.optional(v.strictObject({
    type: v.optional(v.picklist(["Exact", "PathPrefix", "RegularExpression"])),
    value: v.optional(v.string()),
  })),
  headers: v.optional(v.array(v.strictObject({ type: v.optional(matchType), name: nonEmpty, value: v.string() }))),
  queryParams: v.optional(v.array(v.strictObject({ type: v.optional(matchType), name: nonEmpty, value: v.string() }))),
  method: v.optional(v.picklist(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"])),
});

const headerValue = v.strictObject({ name: nonEmpty, value: v.string() });
const headerModifier = v.strictObject({
  set: v.optional(v.array(headerValue)),
  add: v.optional(v.array(headerValue)),
  remove: v.optional(stringList),
});

const pathModifier = v.strictObject({
  type: v.picklist(["ReplaceFullPath", "ReplacePrefixMatch"]),
  replaceFullPath: v.optional(v.string()),
  replacePrefixMatch: v.optional(v.string()),
});

const backendRefBase = {
  group: v.optional(v.string()),
  kind: v.optional(v.string()),
  name: nonEmpty,
  namespace: v.optional(v.string()),
  port: v.optional(port),
};

const mirrorBackend = v.strictObject(backendRefBase);

const filter = v.pipe(v.strictObject({
  type: v.picklist([
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "RequestMirror",
    "ExtensionRef",
    "CORS",
  ]),
  requestHeaderModifier: v.optional(headerModifier),
  responseHeaderModifier: v.optional(headerModifier),
  requestRedirect: v.optional(v.strictObject({
    scheme: v.optional(v.picklist(["http", "https"])),
    hostname: v.optional(v.string()),
    path: v.optional(pathModifier),
    port: v.optional(port),
    statusCode: v.optional(v.picklist([301, 302, 303, 307, 308])),
  })),
  urlRewrite: v.optional(v.strictObject({ hostname: v.optional(v.string()), path: v.optional(pathModifier) })),
  requestMirror: v.optional(v.strictObject({
    backendRef: mirrorBackend,
    percent: v.optional(v.number()),
    fraction: v.optional(v.strictObject({ numerator: v.number(), denominator: v.optional(v.number()) })),
  })),
  extensionRef: ignored,
  cors: ignored,
}), v.check(
  // The Gateway API requires it too (its CRD's validation rule); without it there is nothing to mirror to.
  (f) => f.type !== "RequestMirror" || f.requestMirror !== undefined,
  "A RequestMirror filter needs requestMirror with the backendRef to mirror to",
));

const backendRef = v.strictObject({
  ...backendRefBase,
  weight: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  filters: v.optional(v.array(filter)),
});

const rule = v.strictObject({
  name: v.optional(v.string()),
  matches: v.optional(v.array(match)),
  filters: v.optional(v.array(filter)),
  backendRefs: v.optional(v.array(backendRef)),
  timeouts: v.optional(v.strictObject({ request: v.optional(v.string()), backendRequest: v.optional(v.string()) })),
  retry: v.optional(v.strictObject({
    codes: v.optional(v.array(v.number())),
    attempts: v.optional(v.number()),
    backoff: v.optional(v.string()),
  })),
  sessionPersistence: ignored,
});

export const httpRouteSchema = resource(v.strictObject({
  parentRefs: v.optional(v.array(parentRef)),
  hostnames: v.optional(stringList),
  rules: v.optional(v.array(rule)),
}));

export const referenceGrantSchema = resource(v.strictObject({
  from: v.pipe(
    v.array(v.strictObject({ group: v.string(), kind: nonEmpty, namespace: nonEmpty })),
    v.minLength(1, "A ReferenceGrant needs at least one from entry"),
  ),
  to: v.pipe(
    v.array(v.strictObject({ group: v.string(), kind: nonEmpty, name: v.optional(v.string()) })),
    v.minLength(1, "A ReferenceGrant needs at least one to entry"),
  ),
}));
