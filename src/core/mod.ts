export * from "./errors.ts";
export * from "./log.ts";
export * from "./distance.ts";
export * from "./files.ts";
export * from "./address.ts";
