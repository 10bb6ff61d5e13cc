/**
 * Istio kinds: security.istio.io AuthorizationPolicy, RequestAuthentication, PeerAuthentication and
 * networking.istio.io WorkloadEntry, with the fields of Istio's own API (nothing invented).
 */
import * as v from "valibot";
import { ignored, ipBlockList, labels, nonEmpty, policyTargetRef, port, portValueList, resource, stringList, workloadSelector } from "./common.ts";

const source = v.strictObject({
  principals: v.optional(stringList),
  notPrincipals: v.optional(stringList),
  requestPrincipals: v.optional(stringList),
  notRequestPrincipals: v.optional(stringList),
  namespaces: v.optional(stringList),
  notNamespaces: v.optional(stringList),
  serviceAccounts: v.optional(stringList),
  notServiceAccounts: v.optional(stringList),
  ipBlocks: v.optional(ipBlockList),
  notIpBlocks: v.optional(ipBlockList),
  remoteIpBlocks: v.optional(ipBlockList),
  notRemoteIpBlocks: v.optional(ipBlockList),
  trustDomains: v.optional(stringList),
  notTrustDomains: v.optional(stringList),
});

const operation = v.strictObject({
  hosts: v.optional(stringList),
  notHosts: v.optional(stringList),
  ports: v.optional(portValueList),
  notPorts: v.optional(portValueList),
  methods: v.optional(stringList),
  notMethods: v.optional(stringList),
  paths: v.optional(stringList),
  notPaths: v.optional(stringList),
});

const condition = v.strictObject({
  key: nonEmpty,
  values: v.optional(stringList),
  notValues: v.optional(stringList),
});

const rule = v.strictObject({
  from: v.optional(v.array(v.strictObject({ source: v.optional(source) }))),
  to: v.optional(v.array(v.strictObject({ operation: v.optional(operation) }))),
  when: v.optional(v.array(condition)),
});

export const authorizationPolicySchema = resource(v.optional(v.strictObject({
  selector: v.optional(workloadSelector),
  targetRef: v.optional(policyTargetRef),
  targetRefs: v.optional(v.array(policyTargetRef)),
  action: v.optional(v.picklist(["ALLOW", "DENY", "AUDIT", "CUSTOM"])),
  provider: v.optional(v.strictObject({ name: v.string() })),
  rules: v.optional(v.array(v.nullish(rule))),
})));

const jwtRule = v.strictObject({
  issuer: nonEmpty,
  audiences: v.optional(stringList),
  jwksUri: v.optional(v.string()),
  jwks: v.optional(v.string("jwks must be the JWKS document as a string (a JSON text)")),
  fromHeaders: v.optional(v.array(v.strictObject({ name: nonEmpty, prefix: v.optional(v.string()) }))),
  fromParams: v.optional(stringList),
  fromCookies: v.optional(stringList),
  outputPayloadToHeader: v.optional(v.string()),
  outputClaimToHeaders: v.optional(v.array(v.strictObject({ header: nonEmpty, claim: nonEmpty }))),
  forwardOriginalToken: v.optional(v.boolean()),
  timeout: ignored,
  spaceDelimitedClaims: v.optional(stringList),
});

export const requestAuthenticationSchema = resource(v.optional(v.strictObject({
  selector: v.optional(workloadSelector),
  targetRef: v.optional(policyTargetRef),
  targetRefs: v.optional(v.array(policyTargetRef)),
  jwtRules: v.optional(v.array(jwtRule)),
})));

const mtlsMode = v.picklist(["STRICT", "PERMISSIVE", "DISABLE", "UNSET"]);

export const peerAuthenticationSchema = resource(v.optional(v.strictObject({
  selector: v.optional(workloadSelector),
  mtls: v.optional(v.strictObject({ mode: v.optional(mtlsMode) })),
  portLevelMtls: v.optional(v.record(v.string(), v.strictObject({ mode: v.optional(mtlsMode) }))),
})));

export const workloadEntrySchema = resource(v.strictObject({
  address: v.optional(v.string()),
  ports: v.optional(v.record(v.string(), port)),
  labels: v.optional(labels),
  serviceAccount: v.optional(nonEmpty),
  network: ignored,
  locality: ignored,
  weight: ignored,
}));
