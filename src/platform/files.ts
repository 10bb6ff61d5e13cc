/** Reading the small files a command or a role is pointed at (certificates, tokens, kubeconfig). */
import { readFileSync } from "node:fs";
import { ErrorCode, MeshError } from "../core/mod.ts";

/**
 * The text of the file at `path`, or a MeshError naming `what` it should have been and why it could not
 * be read. The code is ConfigNotFound unless `options.code` says otherwise (commands use Usage: the user
 * gave the path).
 *
 * @example
 * const ca = readText(opts.caCert, "the CA certificate (--ca-cert)");
 * // MeshError MESH_CONFIG_NOT_FOUND: Cannot read the CA certificate (--ca-cert) "/x": ENOENT: ...
 */
export function readText(path: string, what: string, options: { code?: ErrorCode } = {}): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new MeshError(options.code ?? ErrorCode.ConfigNotFound, `Cannot read ${what} "${path}": ${(e as Error).message}`, { cause: e });
  }
}
