/**
 * A proxy's bootstrap files: the control plane's root (--ca-cert) and the token it bootstraps its
 * control-plane client certificate with (--token-file). Read once at start-up so that a wrong path stops
 * the proxy with a message naming the flag, instead of a TLS or token error later.
 */
import { readText } from "../platform/mod.ts";

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
    caCertPem: readText(caCert, "the CA certificate (--ca-cert)"),
    token: readText(tokenFile, "the token file (--token-file)").trim(),
  };
}
