/**
 * The traffic map from the host: the lab's control role runs in its own network namespace, which the host
 * has no route into (and the lab adds none to the host). It serves the map on a unix socket in the lab's
 * state directory instead (a path is the same in every namespace), and this relay, in the host's
 * namespace, forwards a TCP port there (127.0.0.1:15014, or a free port when that one is taken).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { logger } from "../core/mod.ts";
import { uiAddressFile } from "./components.ts";
import type { LabState } from "./state.ts";

const log = logger("lab");

export const DEFAULT_UI_LISTEN = "127.0.0.1:15014";

/** "http://127.0.0.1:15014" once the relay listens, else undefined. */
export function labUiUrl(state: LabState): string | undefined {
  const f = uiAddressFile(state);
  return existsSync(f) ? readFileSync(f, "utf8").trim() || undefined : undefined;
}

function listenOn(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Runs the relay until the process is stopped (`mesh lab ui-relay`, started by `mesh lab up`). */
export async function runUiRelay(opts: { listen: string; socket: string; addressFile: string }): Promise<void> {
  const m = /^(.*):(\d+)$/.exec(opts.listen);
  const host = (m?.[1] ?? "127.0.0.1").replace(/^\[|\]$/g, "");
  const port = Number(m?.[2] ?? 15014);
  const server = net.createServer((client) => {
    const upstream = net.connect(opts.socket);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
  });
  try {
    await listenOn(server, host, port);
  } catch (e) {
    if ((e as { code?: string }).code !== "EADDRINUSE" || port === 0) throw e;
    // Another lab (or anything) has the port: any free one will do, the lab prints where.
    log.warn("traffic map port taken: using a free one", { listen: opts.listen });
    await listenOn(server, host, 0);
  }
  const bound = (server.address() as net.AddressInfo).port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound}`;
  writeFileSync(opts.addressFile, url + "\n");
  log.info("traffic map relayed", { url, socket: opts.socket });
  const stop = () => {
    rmSync(opts.addressFile, { force: true });
    server.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await new Promise(() => {});
}
