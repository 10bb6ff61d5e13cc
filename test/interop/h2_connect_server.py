#!/usr/bin/python3
"""HBONE interop server on Debian's python3-h2: an independent HTTP/2 CONNECT server for our client.

mTLS (TLS 1.3 only, ALPN h2, client certificate required). Every CONNECT is answered by the port of
its :authority: port 1 -> 401, port 2 -> 503, anything else -> 200 and the stream echoes its bytes,
half-closing after the client half-closed and the echo is out. python3-h2 keeps its default
settings (64 KiB windows, 16 KiB frames), so our side meets small windows and frames here.

Prints "READY <port>" when listening, then one JSON line per request:
  {"authority": "...", "headers": {...}, "client_sans": [...]}
"""
import argparse
import json
import select
import socket
import ssl
import sys
import threading

import h2.config
import h2.errors
import h2.connection
import h2.events
import h2.exceptions

lock = threading.Lock()


def log(obj):
    with lock:
        print(json.dumps(obj), flush=True)


def serve(tls):
    sans = [v for (k, v) in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding="utf-8",
        # python3-h2 4.1 insists on :scheme and :path in every request, CONNECT included, which
        # RFC 9113 8.5 forbids; its header checks are off and this script checks CONNECT itself.
        validate_outbound_headers=False, validate_inbound_headers=False))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    pending = {}  # stream id -> bytearray waiting for window
    ended = set()  # streams whose client half is closed
    tls.setblocking(False)
    try:
        while True:
            r, _, _ = select.select([tls], [], [], 0.1)
            if r or tls.pending():
                try:
                    data = tls.recv(1 << 20)
                except (ssl.SSLWantReadError, BlockingIOError):
                    data = None
                if data == b"":
                    return
                if data:
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.RequestReceived):
                            h = dict(ev.headers)
                            authority = h.get(":authority", "")
                            log({"authority": authority, "method": h.get(":method"),
                                 "headers": {k: v for k, v in ev.headers if not k.startswith(":")},
                                 "client_sans": sans})
                            port = authority.rsplit(":", 1)[-1]
                            if h.get(":method") != "CONNECT":
                                conn.send_headers(ev.stream_id, [(":status", "400")], end_stream=True)
                            elif ":path" in h or ":scheme" in h or not authority:
                                # RFC 9113 8.5: a malformed CONNECT is a stream error
                                conn.reset_stream(ev.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
                            elif port == "1":
                                conn.send_headers(ev.stream_id, [(":status", "401")], end_stream=True)
                            elif port == "2":
                                conn.send_headers(ev.stream_id, [(":status", "503")], end_stream=True)
                            else:
                                conn.send_headers(ev.stream_id, [(":status", "200")])
                                pending[ev.stream_id] = bytearray()
                        elif isinstance(ev, h2.events.DataReceived):
                            if ev.stream_id in pending:
                                pending[ev.stream_id] += ev.data
                            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        elif isinstance(ev, h2.events.StreamEnded):
                            ended.add(ev.stream_id)
                        elif isinstance(ev, h2.events.StreamReset):
                            pending.pop(ev.stream_id, None)
                            ended.discard(ev.stream_id)
                        elif isinstance(ev, h2.events.ConnectionTerminated):
                            tls.setblocking(True)
                            tls.sendall(conn.data_to_send())
                            return
            for sid in list(pending):
                buf = pending[sid]
                while buf:
                    try:
                        room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    except h2.exceptions.StreamClosedError:
                        buf.clear()
                        break
                    if room <= 0:
                        break
                    conn.send_data(sid, bytes(buf[:room]))
                    del buf[:room]
                if not buf and sid in ended:
                    conn.end_stream(sid)
                    del pending[sid]
                    ended.discard(sid)
            out = conn.data_to_send()
            while out:
                try:
                    n = tls.send(out)
                    out = out[n:]
                except (ssl.SSLWantWriteError, BlockingIOError):
                    select.select([], [tls], [], 0.1)
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError) as e:
        log({"connection_error": repr(e)})
    finally:
        try:
            tls.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["h2"])

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.host, args.port))
    ls.listen(64)
    print("READY %d" % ls.getsockname()[1], flush=True)
    while True:
        sock, _ = ls.accept()
        try:
            tls = ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log({"handshake_error": repr(e)})
            sock.close()
            continue
        threading.Thread(target=serve, args=(tls,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
