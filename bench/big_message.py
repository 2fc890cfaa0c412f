#!/usr/bin/env python3
"""big_message.py FILE MB - writes a message of about MB megabytes: a short
text part and a base64 attachment of random bytes (incompressible, so the
milter spools and ClamAV decodes it). Used by bench/memory.sh and
bench/soak.sh."""
import base64
import os
import sys


def main():
    path, mb = sys.argv[1], float(sys.argv[2])
    with open(path, "wb") as f:
        f.write(b"From: a@outside.example\r\nTo: user@example.net\r\nSubject: quarterly archive\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                b"--B\r\nContent-Type: application/octet-stream; name=archive.bin\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n")
        b = base64.b64encode(os.urandom(int(mb * 1024 * 1024 * 3 // 4) - 1024))
        for i in range(0, len(b), 76):
            f.write(b[i:i + 76] + b"\r\n")
        f.write(b"--B--\r\n")


if __name__ == "__main__":
    main()
