#!/usr/bin/env python3
"""make_seeds.py - writes the seed inputs of the fuzz targets into DIR/<target>/.

    python3 tests/fuzz/make_seeds.py DIR

The seeds are small and made here from the repository's own files (corpus/,
conf/, rules/, tests/data/) and from hand-written cases; bench/fuzz.sh runs
the targets on tests/fuzz/corpus/<target>/, which holds these seeds after
libFuzzer's -merge=1 (only the inputs that add coverage, see README there).

The milter-session and DNS targets read their input with libFuzzer's
FuzzedDataProvider: strings from the front (ConsumeRandomLengthString: a
backslash followed by another character ends a string, two backslashes are
one), integers from the back. Fdp below writes inputs in that layout.
"""
import hashlib
import os
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Fdp:
    """Builds a FuzzedDataProvider input: strings at the front, integers at the back."""

    def __init__(self):
        self.front = bytearray()
        self.back = bytearray()  # in consumption order (read from the end of the input)

    def string(self, s):
        b = s.encode() if isinstance(s, str) else bytes(s)
        self.front += b.replace(b"\\", b"\\\\") + b"\\e"
        return self

    def byte(self, v):  # ConsumeIntegralInRange with a range below 256, ConsumeBool
        self.back.append(v & 0xFF)
        return self

    def u32(self, v):
        for i in range(4):
            self.back.append((v >> (8 * (3 - i))) & 0xFF)
        return self

    def bytes(self):
        return bytes(self.front) + bytes(reversed(self.back))


def write(dir_, target, data):
    d = pathlib.Path(dir_) / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def messages():
    out = []
    for p in sorted((ROOT / "corpus").rglob("*.eml")):
        out.append(p.read_bytes())
    return out


def split(msg):
    """(header fields as (name, value) with libmilter's LF folding, body)."""
    head, _, body = msg.replace(b"\r\n", b"\n").partition(b"\n\n")
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b"\n" + line
        elif b":" in line:
            n, _, v = line.partition(b":")
            fields.append([n, v])
    return fields, msg[msg.find(b"\r\n\r\n") + 4:] if b"\r\n\r\n" in msg else body


# Session ops (fuzz_milter_session.cc): 0 connect 1 helo 2 mail 3 rcpt 4 header
# 5 eoh 6 body 7 skipped 8 eom 9 abort 10 leading-space 11 flags. The input
# starts (from the back) with the 16-bit mask of edits the MTA refuses.
def session(refuse=0):
    f = Fdp()
    f.back += bytes([refuse >> 8, refuse & 0xFF])
    return f


def session_message(f, msg, ip=0, auth=b"", local=False, chunk=700, leadspc=True, extra=None):
    f.byte(10).byte(1 if leadspc else 0)
    f.byte(0).string("client.example").byte(0).byte(ip).byte(1 if local else 0)
    f.byte(1).string("mail.client.example")
    f.byte(2).string("<sender@outside.example>")
    if auth:
        f.byte(1).string(auth)
    else:
        f.byte(0)
    f.string("4QTEST1")
    f.byte(3).string("<user@example.net>")
    fields, body = split(msg)
    for n, v in fields:
        f.byte(4).string(n).string(v)
    f.byte(5)
    for i in range(0, len(body), chunk):
        f.byte(6).string(body[i:i + chunk]).byte(0)
    for op in extra or []:
        f.byte(op)
    f.byte(8).string("4QTEST1")
    return f


def session_seeds(out):
    msgs = messages()
    for i, m in enumerate(msgs):
        f = session_message(session(0 if i % 4 else 0x5555), m, ip=i % 7,
                            auth=b"alice@example.com" if i % 3 == 0 else b"", local=i % 5 == 0, chunk=200 + 97 * i,
                            leadspc=i % 2 == 0)
        write(out, "fuzz_milter_session", f.bytes())
    m = msgs[0]
    write(out, "fuzz_milter_session", session_message(session(), m, extra=[9]).bytes())  # abort before end of message
    write(out, "fuzz_milter_session", session_message(session(), m, extra=[7]).bytes())  # body skipped
    # Two messages on one connection, the first aborted.
    f = session_message(session(), m, extra=[9])
    write(out, "fuzz_milter_session", session_message(f, msgs[1]).bytes())
    # Holds: one authenticated sender over messages_per_minute (3).
    f = session()
    for _ in range(5):
        session_message(f, m, auth=b"bob@example.com")
    write(out, "fuzz_milter_session", f.bytes())
    # Out of order: end of message and body before MAIL FROM.
    write(out, "fuzz_milter_session", session().byte(8).string("Q").byte(6).string("x").byte(0).bytes())
    write(out, "fuzz_milter_session",
          session().byte(4).string("Subject").string(" hi").byte(5).byte(8).string("Q").bytes())
    # A long body past max_scan_bytes (4096).
    f = session().byte(2).string("<a@b.example>").byte(0).string("Q")
    for _ in range(3):
        f.byte(6).string(b"spammy " * 500).byte(1)
        f.back += bytes([0, 200])
    write(out, "fuzz_milter_session", f.byte(8).string("Q").bytes())


DKIM_KEY = ("v=DKIM1; h=sha256; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC16WFk8xc/FC+grxug9B7sy4h9Mh114re/wN6GOA/"
            "XipnMDrUt5TsSm/oK/39zwSjbn6PRQ4ZbK3XY+3ooCkVjTBC+bkAZnNPeWJDVaLYif06oX0N8seO+qCziqZF29v0ani9EOrqjWlFZma3JNFUn"
            "mib2Bj9z0uSkLMUAcsLkuwIDAQAB")


def answer(f, rcode, records=(), ttl=300):
    """One lookup's answer (fuzz_dns_answers.cc): rcode 0-2 ok, 3 nxdomain, 4 nodata, 5 servfail, 6 timeout, 7 error."""
    f.byte(rcode).u32(ttl)
    if rcode <= 2:
        f.byte(len(records))
        for r in records:
            f.string(r)
    return f


# fuzz_milter_wire.cc: a mode byte, then the packets an MTA writes.
def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def cstrings(*parts):
    return b"".join(p + b"\0" for p in parts)


def wire_dialogue(msg, chunk=600):
    head, _, body = msg.partition(b"\r\n\r\n")
    out = packet(b"O", struct.pack(">III", 6, 0x1ff, 0x1fffff))
    out += packet(b"D", b"C" + cstrings(b"j", b"mx.example", b"{daemon_name}", b"smtpd"))
    out += packet(b"C", cstrings(b"client.example") + b"4" + struct.pack(">H", 2525) + cstrings(b"192.0.2.7"))
    out += packet(b"H", cstrings(b"client.example"))
    out += packet(b"D", b"M" + cstrings(b"i", b"4QTEST", b"{auth_authen}", b"alice"))
    out += packet(b"M", cstrings(b"<a@example.org>", b"SIZE=100"))
    out += packet(b"R", cstrings(b"<b@example.net>"))
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name:
            out += packet(b"L", cstrings(name, value))
    out += packet(b"N")
    for i in range(0, len(body), chunk):
        out += packet(b"B", body[i:i + chunk])
    out += packet(b"D", b"E" + cstrings(b"i", b"4QTEST")) + packet(b"E")
    return out


def wire_seeds(out):
    msgs = messages()
    for i, m in enumerate(msgs[:6]):
        write(out, "fuzz_milter_wire", bytes([i * 37 % 256]) + wire_dialogue(m[:3000]))
    m = msgs[0][:1500]
    d = wire_dialogue(m)
    write(out, "fuzz_milter_wire", bytes([15]) + d[:len(d) // 2] + packet(b"A") + d + packet(b"Q"))
    write(out, "fuzz_milter_wire", bytes([3]) + d + packet(b"K") + d + packet(b"Q"))  # QUIT_NC, then again
    write(out, "fuzz_milter_wire", bytes([0]) + packet(b"O", b"short"))
    write(out, "fuzz_milter_wire", bytes([0]) + struct.pack(">I", 70000) + b"B")


def dns_seeds(out):
    txt_sets = [
        ["v=spf1 ip4:192.0.2.0/24 -all"],
        ["v=spf1 include:_spf.dkim.test ~all"],
        ["v=spf1 a mx ptr exists:%{i}.ex.dkim.test redirect=other.test"],
        ["v=spf1 ip6:2001:db8::/32 ?all", "v=spf1 -all"],
        ["v=spf1 " + "a:x.test " * 12 + "-all"],
        ["v=spf1 ip4:192.0.2.9/99 +all"],
        [DKIM_KEY],
        [DKIM_KEY[:60]],
        ["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
        ["v=DKIM1; p="],
        ["v=DMARC1; p=reject; rua=mailto:dmarc@dkim.test"],
        ["v=DMARC1; p=none; sp=quarantine; pct=50; adkim=s; aspf=s"],
        ["v=DMARC1; p=bogus"],
        ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    ]
    addr_sets = [["127.0.0.2"], ["127.0.0.4", "127.0.0.2"], ["127.255.255.254"], ["192.0.2.9"], ["::1"], [""]]
    n = 0
    for pick in (0, 1, 2, 3, 8, 32, 64, 97):
        for txt in txt_sets:
            f = Fdp()  # after byte 0 (`pick`), which the target reads itself
            # SPF of MAIL FROM (and again for the explanation), of HELO (twice),
            # then (for the signed message) the DKIM key, DMARC, the lists.
            answer(f, 0, txt)
            answer(f, 0, txt)
            answer(f, 0, ["v=spf1 ?all"])
            answer(f, 0, ["v=spf1 ?all"])
            answer(f, 0, [DKIM_KEY] if "DKIM1" not in txt[0] else txt)
            answer(f, 0, ["v=DMARC1; p=reject"] if "DMARC1" not in txt[0] else txt)
            answer(f, 0, addr_sets[n % len(addr_sets)])
            answer(f, 3)
            n += 1
            write(out, "fuzz_dns_answers", bytes([pick]) + f.bytes())
    for rc in range(8):
        f = Fdp()
        for _ in range(6):
            answer(f, rc, ["v=spf1 -all"])
        write(out, "fuzz_dns_answers", bytes([rc * 8]) + f.bytes())
    # MX and PTR answers for an SPF "mx ptr" walk.
    f = Fdp()
    answer(f, 0, ["v=spf1 mx ptr -all"])
    answer(f, 0, ["mail.dkim.test", "mx2.dkim.test"])
    answer(f, 0, ["192.0.2.9"])
    answer(f, 0, ["client.dkim.test"])
    answer(f, 0, ["192.0.2.9"])
    write(out, "fuzz_dns_answers", bytes([0]) + f.bytes())


def config_seeds(out):
    toml = (ROOT / "conf/spamgate.toml").read_text()
    write(out, "fuzz_config", toml)
    write(out, "fuzz_config", (ROOT / "tests/data/golden.toml").read_text())
    write(out, "fuzz_config", (ROOT / "bench/corpus-eval.toml").read_text())
    # Each section of the shipped config alone, behind the required key.
    sections = toml.split("\n[")
    for s in sections[1:]:
        write(out, "fuzz_config", 'rules_dir = "rules"\n[' + s)
    for text in [
        'rules_dir = "r"\nthreshold = 5.55\n',
        'rules_dir = "r"\nthreshold = "x"\n',
        'rules_dir = "r"\n[milter]\ntrusted_networks = ["10.0.0.0/33", "::/129", "x"]\n',
        'rules_dir = "r"\n[[dnsbl]]\nzone = "bl.test"\nsymbol = "RCVD_IN_BL"\nscore = 3.0\n'
        'codes = { "127.0.0.2" = "RCVD_IN_BL_SBL" }\n[[uribl]]\nzone = "u.test"\nsymbol = "URIBL_X"\n',
        'rules_dir = "r"\n[outbound]\nstore = "redis"\n',
        'rules_dir = "r"\n[bayes]\nstore = "redis"\nredis = "unix:/run/redis.sock"\n',
        'rules_dir = "r"\n[milter]\non_check_error_by_check = { rules = "tempfail", clamav = "continue" }\n',
        'rules_dir = "r"\n[outbound.sender_domains]\n"alice@example.com" = ["example.com"]\n"@shop.example" = []\n',
        'rules_dir = "r"\nmax_scan_bytes = -1\n[limits]\nmax_headers = 99999999999\n',
        "rules_dir = 'r'\nhostname = \"a\\u0000b\"\n",
        'rules_dir = "r"\n[log]\nlevel = "trace"\ntarget = "/var/log/x"\n',
        "a = [[[[[[[[[[[[[[1]]]]]]]]]]]]]]\n",
        "x = { y = { z = { w = 1 } } }\n",
        "[a.b.c]\n[a]\nb = 1\n",
        'd = 1979-05-27T07:32:00-08:00\ne = inf\nf = nan\ng = 0x7fffffffffffffff\n',
    ]:
        write(out, "fuzz_config", text)


def policy_seeds(out):
    pol = (ROOT / "conf/signature-policy.conf").read_text()
    lim = (ROOT / "conf/outbound-limits.conf").read_text()
    for t in [pol, "ignore MBL_349876.UNOFFICIAL\nscore Win.Test.EICAR_HDB-1\nreject X\n",
              "bogus X\nignore\nscore A B\n# c\n\n   \t\n", "ignore " + "A" * 300 + ".UNOFFICIAL\n",
              "reject .UNOFFICIAL\n", "ignore X\r\nscore Y\r\n"]:
        write(out, "fuzz_policy_files", b"\x00" + t.encode())
    for t in [lim, "newsletter@shop.example   messages_per_hour=5000 recipients_per_day=100000\n"
                   "domain:bigcustomer.example  messages_per_day=100000\nmonitoring@example.com    unlimited\n",
              "alice messages_per_minute=\nbob x=1\ncarol messages_per_day=1234567890\ndave\n",
              "domain: messages_per_minute=1 # comment\n", "ALICE@EXAMPLE.COM unlimited messages_per_hour=3\n",
              "a recipients_per_minute=-1 messages_per_hour=0x10\r\n"]:
        write(out, "fuzz_policy_files", b"\x01" + t.encode())


def arf_seeds(out):
    arf = sorted((ROOT / "corpus/arf").glob("*.eml"))
    for i, p in enumerate(arf):
        write(out, "fuzz_arf", bytes([3]) + p.read_bytes())
    # An mbox of reports, one with a >From line, at each read limit.
    mbox = b""
    for p in arf[:3]:
        mbox += b"From abuse@isp.example  Mon Aug 26 15:14:22 2002\n" + p.read_bytes().replace(b"\r\n", b"\n") + b"\n"
    mbox += b"From x@y Tue Jan  1 00:00:00 2030\nSubject: a\n\n>From the desk\n>>From here\nFrom here too\n"
    for lim in range(4):
        write(out, "fuzz_arf", bytes([lim]) + mbox)
    for m in messages()[:6]:
        write(out, "fuzz_arf", bytes([3]) + m)
    write(out, "fuzz_arf", b"\x03From \nFrom a Mon\n\nFrom b Sun\r\n\r\nFrom c Fri")
    # A minimal report (RFC 5965) with the fields the reader takes.
    report = (b"From: abuse@isp.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
              b"report-type=feedback-report; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nabuse\r\n"
              b"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: x/1\r\n"
              b"Version: 1\r\nOriginal-Mail-From: <a@b.example>\r\nSource-IP: 192.0.2.9\r\n\r\n"
              b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\nSubject: s\r\n\r\nbody\r\n--b--\r\n")
    write(out, "fuzz_arf", b"\x03" + report)
    write(out, "fuzz_arf", b"\x03" + report.replace(b"message/rfc822", b"text/rfc822-headers"))
    write(out, "fuzz_arf", b"\x03" + report.replace(b"Content-Type: message/feedback-report\r\n",
                                                     b"Content-Type: message/feedback-report\r\n"
                                                     b"Content-Transfer-Encoding: base64\r\n"))


def redis_seeds(out):
    for t in [
        b"*3\r\n$1\r\n5\r\n$1\r\n7\r\n$2\r\n42\r\n:1234\r\n",        # HMGET totals + HLEN
        b"*3\r\n$-1\r\n$-1\r\n$-1\r\n:0\r\n",
        b"*2\r\n$1\r\n0\r\n*4\r\n$8\r\nABCDEFGH\r\n$3\r\n1,2\r\n$8\r\n12345678\r\n$5\r\n99,99\r\n",  # HSCAN
        b"*2\r\n$3\r\n123\r\n*0\r\n",
        b"*2\r\n$1\r\n0\r\n*3\r\n$8\r\nABCDEFGH\r\n$41\r\n" + b"1" * 41 + b"\r\n$1\r\n1\r\n",
        b"$7\r\nlearned\r\n$5\r\nmoved\r\n$9\r\nforgotten\r\n$8\r\nnotfound\r\n$7\r\nalready\r\n",
        b"-ERR wrong number of arguments\r\n+OK\r\n+QUEUED\r\n*-1\r\n",
        b"*4\r\n$3\r\n1,0\r\n$-1\r\n$4\r\n0,12\r\n$20\r\n18446744073709551616\r\n",
        b"$-1\r\n$0\r\n\r\n",
        b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        b":-1\r\n:9223372036854775807\r\n",
    ]:
        write(out, "fuzz_redis_replies", t)
    # State records: rate windows (window.h: 3 series of 60+1 slots) and a hold.
    import struct
    one = struct.pack("<I", 1) + b"".join(struct.pack("<III", 29929862 + i, i, 2 * i) for i in range(61))
    rec = one + struct.pack("<I", 60) + b"\0" * (12 * 61) + struct.pack("<I", 1440) + b"\0" * (12 * 61)
    write(out, "fuzz_redis_replies", b"$%d\r\n" % len(rec) + rec + b"\r\n")
    write(out, "fuzz_redis_replies", b"$%d\r\n" % len(one) + one + b"\r\n")
    hold = b"1795791775\t1795795375\talice@example.com\tmessages_per_minute 4/3 in 60 s"
    write(out, "fuzz_redis_replies", b"$%d\r\n" % len(hold) + hold + b"\r\n")


def rules_seeds(out):
    for p in [ROOT / "tests/data/rules/golden.cf", ROOT / "conf/local.cf"] + sorted((ROOT / "rules").glob("*.cf")):
        text = p.read_text(errors="replace")
        # Small pieces: each group of lines up to a blank line.
        for block in text.split("\n\n"):
            if block.strip() and not all(l.startswith("#") for l in block.splitlines()):
                write(out, "fuzz_rules", block + "\n")


def message_seeds(out):
    for m in messages():
        write(out, "fuzz_message", m)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for f in (session_seeds, wire_seeds, dns_seeds, config_seeds, policy_seeds, arf_seeds, redis_seeds, rules_seeds, message_seeds):
        f(out)


if __name__ == "__main__":
    main()
