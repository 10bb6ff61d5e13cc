/**
 * Authorization and request authentication, as pure functions over the model: where each policy is
 * enforced (placement), how a connection or request is decided (authorize), and how JWTs are checked
 * (authenticate). No I/O: key fetching is injected.
 */
export * from "./request.ts";
export * from "./strings.ts";
export * from "./cidr.ts";
export * from "./path.ts";
export * from "./attributes.ts";
export * from "./evaluate.ts";
export * from "./placement.ts";
export * from "./jwt.ts";
export * from "./admit.ts";
export * from "./source.ts";
