#!/usr/bin/python3
"""HBONE interop client on Debian's python3-h2: an independent HTTP/2 implementation for our server.

Opens one mTLS (TLS 1.3, ALPN h2) connection, sends CONNECT streams, pushes a deterministic payload
through each, half-closes, reads the echo until the server half-closes, and prints one JSON line:

  {"peer_sans": [...], "streams": [{"status": 200, "sent": N, "received": N, "sent_sha256": "...",
   "received_sha256": "...", "ended": true, "reset": null}, ...], "storm": K, "error": null}

--storm K opens and immediately resets K extra streams while the data streams run (rapid reset).
--no-read-after B stops reading once B bytes came back on the first stream (a peer that never reads).
"""
import argparse
import hashlib
import json
import random
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


def payload(index, size):
    rnd = random.Random(1000 + index)
    return bytes(rnd.getrandbits(8) for _ in range(min(size, 65536))) * (size // 65536 + 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--authority", default="127.0.0.1:9")
    ap.add_argument("--header", action="append", default=[], help="name=value")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--bytes", type=int, default=1024)
    ap.add_argument("--storm", type=int, default=0)
    ap.add_argument("--no-read-after", type=int, default=-1)
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # HBONE identities are URI SANs, checked below
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    tls = ctx.wrap_socket(raw)
    assert tls.selected_alpn_protocol() == "h2", tls.selected_alpn_protocol()
    sans = [v for (k, v) in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]

    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8",
        # python3-h2 4.1 insists on :scheme and :path in every request, CONNECT included, which
        # RFC 9113 8.5 forbids; its header checks are off and this script checks CONNECT itself.
        validate_outbound_headers=False, validate_inbound_headers=False))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())

    extra = [tuple(h.split("=", 1)) for h in args.header]
    streams = {}
    for i in range(args.streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", args.authority)] + extra)
        data = payload(i, args.bytes)[: args.bytes]
        streams[sid] = {"index": i, "data": data, "off": 0, "status": None, "recv": bytearray(),
                        "ended": False, "reset": None, "end_sent": False, "open": False}
    tls.sendall(conn.data_to_send())

    storm_left = args.storm
    reading = True
    deadline = time.time() + args.timeout
    error = None
    tls.setblocking(False)
    while time.time() < deadline:
        # Rapid reset: a burst of streams opened and cancelled at once.
        if storm_left > 0:
            for _ in range(min(200, storm_left)):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "CONNECT"), (":authority", args.authority)])
                conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                storm_left -= 1
        # Send what the windows allow.
        for sid, st in streams.items():
            if not st["open"] or st["end_sent"] or st["reset"] is not None:
                continue
            while st["off"] < len(st["data"]):
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                chunk = st["data"][st["off"]: st["off"] + room]
                conn.send_data(sid, chunk)
                st["off"] += len(chunk)
            if st["off"] >= len(st["data"]):
                conn.end_stream(sid)
                st["end_sent"] = True
        out = conn.data_to_send()
        while out:
            try:
                n = tls.send(out)
                out = out[n:]
            except (ssl.SSLWantWriteError, BlockingIOError):
                select.select([], [tls], [], 0.05)
        if all(st["reset"] is not None or (st["ended"] and st["end_sent"]) for st in streams.values()) and storm_left == 0:
            break
        if not reading:
            time.sleep(0.05)
            continue
        r, _, _ = select.select([tls], [], [], 0.05)
        if not r and tls.pending() == 0:
            continue
        try:
            data = tls.recv(1 << 20)
        except (ssl.SSLWantReadError, BlockingIOError):
            continue
        if not data:
            error = "connection closed by server"
            break
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            error = "protocol error: %r" % (e,)
            break
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id in streams:
                st = streams[ev.stream_id]
                st["status"] = int(dict(ev.headers)[":status"])
                st["open"] = 200 <= st["status"] < 300
            elif isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in streams:
                    streams[ev.stream_id]["recv"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in streams:
                streams[ev.stream_id]["ended"] = True
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id in streams:
                streams[ev.stream_id]["reset"] = int(ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                error = "GOAWAY %s" % (ev.error_code,)
        first = streams[min(streams)]
        if args.no_read_after >= 0 and len(first["recv"]) >= args.no_read_after:
            reading = False
        if error:
            break
    else:
        error = error or "timeout"

    result = {
        "peer_sans": sans,
        "storm": args.storm - storm_left,
        "error": error,
        "streams": [{
            "status": st["status"],
            "sent": st["off"],
            "received": len(st["recv"]),
            "sent_sha256": hashlib.sha256(st["data"][: st["off"]]).hexdigest(),
            "received_sha256": hashlib.sha256(bytes(st["recv"])).hexdigest(),
            "ended": st["ended"],
            "reset": st["reset"],
        } for st in streams.values()],
    }
    print(json.dumps(result), flush=True)
    if reading:
        try:
            conn.close_connection()
            tls.setblocking(True)
            tls.sendall(conn.data_to_send())
        except Exception:
            pass
    tls.close()


if __name__ == "__main__":
    sys.exit(main())
