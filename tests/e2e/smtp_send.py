#!/usr/bin/env python3
"""smtp_send.py - send messages over SMTP to a loopback server, as an
outside client (XCLIENT), several per connection and/or from several
parallel clients. Used by the end-to-end test and the Postfix benchmark.

usage: smtp_send.py --port P [--addr 192.0.2.10] [--login USER]
                    [--per-connection N] [--clients C] [--latency-out FILE] FILE...
Every FILE is sent once (client c takes files c, c+C, ...). Prints
"sent N failed M seconds S" and, with --latency-out, one latency (ms) per line.
"""
import argparse
import smtplib
import socket
import sys
import threading
import time


def send_all(port, addr, login, files, per_conn, latencies, failures, lock, timeout=120, codes=None):
    i = 0
    while i < len(files):
        batch = files[i:i + per_conn]
        i += per_conn
        answered = 0  # messages of the batch that got a final reply
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
            # no Nagle on our side: a client's delayed ACKs must not be measured as server latency
            s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.ehlo("client.test.example")
            if addr != "direct":  # (direct: Postfix sees our own loopback address; no XCLIENT)
                attrs = "ADDR=" + (("IPV6:" + addr) if ":" in addr else addr)
                if login:
                    attrs += " LOGIN=" + login
                code, msg = s.docmd("XCLIENT", attrs)
                if code != 220:
                    raise RuntimeError("XCLIENT refused: %d %s" % (code, msg))
                s.ehlo("client.test.example")
            for f in batch:
                with open(f, "rb") as fh:
                    data = fh.read()
                if data.startswith(b"From "):  # an mbox separator line is not part of the message
                    data = data.split(b"\n", 1)[1] if b"\n" in data else b""
                t0 = time.monotonic()
                try:
                    s.sendmail("sender@outside.example", ["user@example.net"], data)
                    with lock:
                        latencies.append((time.monotonic() - t0) * 1000.0)
                        if codes is not None:
                            codes.append("250")
                    answered += 1
                except smtplib.SMTPException as e:
                    with lock:
                        failures.append("%s: %s" % (f, e))
                        if codes is not None:
                            codes.append(str(getattr(e, "smtp_code", "") or
                                             next(iter(getattr(e, "recipients", {}).values()), ("err",))[0]))
                    answered += 1
                    s.rset()
            s.quit()
        except (OSError, smtplib.SMTPException, RuntimeError) as e:
            with lock:  # the connection broke: what the batch had left got no final reply
                failures.extend("%s: %s" % (f, e) for f in batch[answered:])
                if codes is not None:
                    codes.extend(["conn"] * (len(batch) - answered))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--addr", default="192.0.2.10",
                    help="the client address Postfix is told (XCLIENT); 'direct': no XCLIENT")
    ap.add_argument("--login", default="")
    ap.add_argument("--per-connection", type=int, default=1)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--latency-out", default="")
    ap.add_argument("--files-from", default="", help="a file with one message path per line")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for any one reply")
    ap.add_argument("--ramp-ms", type=float, default=0, help="pause between starting two clients")
    ap.add_argument("--codes-out", default="", help="a file: the final reply code of each message (or 'conn')")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.files_from:
        with open(a.files_from) as fh:
            a.files += [line.rstrip("\n") for line in fh if line.strip()]
    latencies, failures, lock = [], [], threading.Lock()
    codes = [] if a.codes_out else None
    threads = [threading.Thread(target=send_all, args=(a.port, a.addr, a.login, a.files[c::a.clients],
                                                       a.per_connection, latencies, failures, lock, a.timeout,
                                                       codes))
               for c in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
        if a.ramp_ms:
            time.sleep(a.ramp_ms / 1000.0)
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    for f in failures[:10]:
        print("failed:", f, file=sys.stderr)
    if a.codes_out:
        with open(a.codes_out, "w") as fh:
            fh.write("".join(c + "\n" for c in codes))
    if a.latency_out:
        with open(a.latency_out, "w") as fh:
            fh.write("\n".join("%.3f" % x for x in latencies) + "\n")
    print("sent %d failed %d seconds %.3f" % (len(latencies), len(failures), secs))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
