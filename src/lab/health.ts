/**
 * Is it ready? Mesh components answer GET :15021/healthz/ready with 200; pods are ready when their
 * declared ports listen. Both are asked from inside the component's own namespace (the host namespace
 * has no route into the lab, on purpose).
 */
import { inNetns, runCommand } from "../platform/mod.ts";

export const READY_PORT = 15021;

/** Whether /healthz/ready answers 200 at 127.0.0.1 or at `address`, inside `netns`. */
export function probeReady(netns: string, address?: string): boolean {
  for (const host of address ? ["127.0.0.1", address] : ["127.0.0.1"]) {
    const r = runCommand(
      inNetns(netns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", `http://${host}:${READY_PORT}/healthz/ready`]),
      { timeoutMs: 3000 },
    );
    if (r.stdout.trim() === "200") return true;
  }
  return false;
}

/** TCP ports listening in `netns` (any address). */
export function listeningPorts(netns: string): Set<number> {
  const r = runCommand(inNetns(netns, ["ss", "-Htln"]), { timeoutMs: 3000 });
  const ports = new Set<number>();
  if (r.code !== 0) return ports;
  for (const line of r.stdout.split("\n")) {
    const local = line.trim().split(/\s+/)[3];
    const port = Number(local?.slice(local.lastIndexOf(":") + 1));
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}
