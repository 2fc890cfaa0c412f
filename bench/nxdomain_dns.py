#!/usr/bin/env python3
"""nxdomain_dns.py - a DNS server on loopback that answers every query with
NXDOMAIN at once, so a filter's network checks end immediately and no query
leaves the machine. With --silent it reads every query and never answers (a
dead or hung DNS server, whose port is still open). With --delay SECONDS it
answers each query that much later (a slow server).
usage: nxdomain_dns.py [--silent | --delay SECONDS] PORT (UDP and TCP on 127.0.0.1)."""
import socket
import socketserver
import sys
import threading
import time


def answer(q):
    if len(q) < 12:
        return None
    i = 12  # copy the question only (not an EDNS record after it)
    while i < len(q) and q[i] != 0:
        i += 1 + q[i]
    end = i + 5
    if end > len(q):
        return None
    flags = 0x80 | (q[2] & 0x79)  # QR=1, keep opcode and RD
    return q[:2] + bytes([flags, 0x83]) + b"\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:end]


SILENT = False
DELAY = 0.0


def reply(q):
    if SILENT:
        return None
    if DELAY:
        time.sleep(DELAY)  # each request has its own thread: others are not held up
    return answer(q)


class Udp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        r = reply(data)
        if r:
            sock.sendto(r, self.client_address)


class Tcp(socketserver.BaseRequestHandler):
    def handle(self):
        n = self.request.recv(2)
        if len(n) < 2:
            return
        q = self.request.recv(int.from_bytes(n, "big"))
        r = reply(q)
        if r:
            self.request.sendall(len(r).to_bytes(2, "big") + r)


def main():
    global SILENT, DELAY
    args = sys.argv[1:]
    if args and args[0] == "--silent":
        SILENT = True
        args = args[1:]
    elif len(args) > 1 and args[0] == "--delay":
        DELAY = float(args[1])
        args = args[2:]
    port = int(args[0])
    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    u = socketserver.ThreadingUDPServer(("127.0.0.1", port), Udp)
    t = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
    threading.Thread(target=t.serve_forever, daemon=True).start()
    u.serve_forever()


if __name__ == "__main__":
    main()
