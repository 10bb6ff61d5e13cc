/** The normalized mesh state and its indexes. */
export * from "./types.ts";
export * from "./index.ts";
export * from "./attach.ts";
export * from "./enforcement.ts";
