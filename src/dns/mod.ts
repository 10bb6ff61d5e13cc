/** The DNS wire format: reading and writing messages (pure; the ztunnel's DNS proxy and resolver use it). */
export * from "./message.ts";
