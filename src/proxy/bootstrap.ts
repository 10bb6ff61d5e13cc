/**
 * A proxy's bootstrap files: the control plane's root (--ca-cert) and the token it bootstraps its
 * control-plane client certificate with (--token-file). Read once at start-up so that a wrong path stops
 * the proxy with a message naming the flag, instead of a TLS or token error later.
 */
import { readFileSync } from "node:fs";
import { ErrorCode, MeshError } from "../core/mod.ts";

export interface Bootstrap {
  /** The --ca-cert file's text. */
  caCertPem: string;
  /** The --token-file's content, without surrounding whitespace. */
  token: string;
}

/**
 * Reads the bootstrap files.
 * @throws MeshError (MESH_CONFIG_NOT_FOUND) naming the flag and the path of the file that cannot be read.
 */
export function readBootstrap(caCert: string, tokenFile: string): Bootstrap {
  return {
    caCertPem: readText(caCert, "CA certificate (--ca-cert)"),
    token: readText(tokenFile, "token file (--token-file)").trim(),
  };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new MeshError(ErrorCode.ConfigNotFound, `Cannot read the ${what} "${path}": ${(e as Error).message}`);
  }
}
