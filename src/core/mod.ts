export * from "./errors.ts";
export * from "./log.ts";
export { editDistance } from "./distance.ts";
export * from "./address.ts";
export * from "./address.ts";
