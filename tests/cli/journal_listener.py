#!/usr/bin/python3
"""journal_listener.py SOCKET OUT - stands in for journald's native socket
(in a private mount namespace, tests/cli/cli_test.sh): every datagram
received is appended to OUT, its fields one per line, then a line "--"."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(out + ".ready", "w").close()
while True:
    data = s.recv(1 << 20)
    with open(out, "ab") as fh:
        fh.write(data.rstrip(b"\n") + b"\n--\n")
