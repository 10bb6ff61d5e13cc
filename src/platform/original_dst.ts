/**
 * The original destination of a connection that iptables REDIRECTed (or DNATed) to us: the address the
 * client meant to reach before netfilter rewrote it. Linux keeps it in conntrack and returns it through
 * getsockopt(fd, SOL_IP, SO_ORIGINAL_DST) (IPv4) or getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST) (IPv6).
 * Bun has no API for it, so this reaches libc through bun:ffi on the socket's file descriptor.
 */
import { dlopen, FFIType, ptr, read, type Pointer } from "bun:ffi";
import { ErrorCode, MeshError } from "../core/mod.ts";

const SOL_IP = 0;
const SOL_IPV6 = 41;
/** SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST share the number 80 (linux/netfilter_ipv4.h, ipv6/ip6_tables.h). */
const SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
/** ENOENT: conntrack has no entry, i.e. the connection was not redirected. */
const ENOENT = 2;

export interface OriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

type Libc = {
  getsockopt(fd: number, level: number, name: number, value: Pointer, length: Pointer): number;
  errno(): number;
};

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = dlopen("libc.so.6", {
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  libc = {
    getsockopt: (fd, level, name, value, length) => lib.symbols.getsockopt(fd, level, name, value, length),
    // errno is thread-local; this runs on the JS thread right after getsockopt, with no libc call between.
    errno: () => read.i32(lib.symbols.__errno_location()!, 0),
  };
  return libc;
}

/** errno of one getsockopt attempt, or the decoded address. */
function query(fd: number, level: number): OriginalDestination | number {
  const c = load();
  const buf = new Uint8Array(28); // sockaddr_in6 is the larger of the two
  const len = new Uint32Array([buf.length]);
  if (c.getsockopt(fd, level, SO_ORIGINAL_DST, ptr(buf), ptr(len)) !== 0) return c.errno();
  const view = new DataView(buf.buffer);
  const family = view.getUint16(0, true);
  const port = view.getUint16(2, false);
  if (family === AF_INET) {
    return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 };
  }
  if (family === AF_INET6) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(8 + i * 2, false).toString(16));
    return { address: compressIPv6(groups), port, family: 6 };
  }
  return -1;
}

/**
 * The original destination of the accepted connection on `fd`. Throws MeshError(MESH_PLATFORM) when
 * conntrack has no record of the connection or the fd is not a TCP socket. A connection that conntrack
 * tracks but nothing rewrote (a client dialed the listener directly, in a namespace with nat rules)
 * yields the listener's own address and port: a proxy compares with its local address to refuse such
 * direct connections (they would loop).
 *
 * @example
 *   Bun.listen({ hostname: "0.0.0.0", port: 15001, socket: { open(s) {
 *     const { address, port } = getOriginalDestination(s.fd); } } });
 */
export function getOriginalDestination(fd: number): OriginalDestination {
  if (!Number.isInteger(fd) || fd < 0) {
    throw new MeshError(ErrorCode.Platform, `Cannot read the original destination: invalid file descriptor ${fd}`);
  }
  const v4 = query(fd, SOL_IP);
  if (typeof v4 !== "number") return v4;
  // An IPv6 socket answers SOL_IP with ENOENT or ENOPROTOOPT-like errors; try its own level.
  const v6 = query(fd, SOL_IPV6);
  if (typeof v6 !== "number") return v6;
  throw new MeshError(
    ErrorCode.Platform,
    v4 === ENOENT || v6 === ENOENT
      ? `Connection on fd ${fd} has no original destination: it was not redirected by iptables`
      : `getsockopt(SO_ORIGINAL_DST) failed on fd ${fd}: errno ${v4} (IPv4), ${v6} (IPv6)`,
  );
}

function compressIPv6(groups: string[]): string {
  // Longest run of zero groups becomes "::" (RFC 5952).
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLen).join(":")}`;
}
