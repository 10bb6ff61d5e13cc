/**
 * `mesh explain`: what the mesh does with one request, and why, computed with the same engines the
 * proxies run (policy placement and evaluation, JWT authentication, HTTP routing). Pure apart from JWT
 * key handling, which is injected: no network, no files.
 */
export {
  type EnforcementPointName,
  type ExplainedAuthn,
  type ExplainedBackend,
  type ExplainedRoute,
  type Explanation,
  type ExplainOptions,
  explainRequest,
  type Hop,
} from "./explain.ts";
export { formatExplanation } from "./format.ts";
export {
  type ExplainQuery,
  type ExplainSource,
  type ExplainTarget,
  isIpAddress,
  parseHeaders,
  parseSource,
  parseTarget,
} from "./query.ts";
