/**
 * Ports for tests (not part of the product). A test that must name a port before the process that binds
 * it starts (a restart on the same port, a port written into a configuration, a program that cannot
 * report the port it bound) takes it from here.
 */
import { readFileSync } from "node:fs";

/** The kernel's ephemeral port range (bind to port 0 and outgoing connections take ports from it). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (lo! > 0 && hi! >= lo!) return [lo!, hi!];
  } catch {
    // not Linux: the usual default
  }
  return [32768, 60999];
}

function bindable(hostname: string, port: number): boolean {
  try {
    Bun.listen({ hostname, port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/**
 * A free TCP port for a process that must be told its port in advance (a restart on the same port, a
 * port written into its configuration, a program that cannot report the port it bound). It is drawn
 * from outside the kernel's ephemeral range: a port found free by binding port 0 and closing comes from
 * that range, where any bind(0) or outgoing connection on the machine can take it before the process
 * binds it. Outside the range only an explicit bind can: here, another test drawing the same number.
 * Drawn from 20000 up to the range (above the mesh's own 15000-15090), or above it if the range starts low.
 */
export function fixedPort(): number {
  const [lo, hi] = ephemeralRange();
  let from = 20_000, to = lo - 1;
  if (to - from < 1000) [from, to] = [hi + 1, 65_535];
  for (let i = 0; i < 200; i++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (bindable("0.0.0.0", port) && bindable("127.0.0.1", port)) return port;
  }
  throw new Error(`no free port in ${from}-${to}`);
}
