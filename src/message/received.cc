// received.cc - Received chain -> relays (see received.h).
#include "message/received.h"

#include <cstdio>
#include <memory>

#include "util/c_handle.h"

namespace spamgate {
namespace {

// A pattern compiled once (PCRE2: std::regex recurses per character and a
// 16 KB hostile field could exhaust the stack), searched with captures.
class Re {
 public:
  explicit Re(const std::string& pattern, bool caseless = false) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              caseless ? PCRE2_CASELESS : 0, &err, &off, nullptr));
    // JIT: a few times faster on every Received field (pcre2_match uses it;
    // without JIT support it interprets).
    if (code_) pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);
  }
  // Captures into `groups` (unset groups are empty, `set` says which).
  bool search(std::string_view s, std::vector<std::string>& groups, std::vector<bool>* set = nullptr) const {
    if (!code_) return false;
    thread_local Pcre2MatchData md(pcre2_match_data_create(8, nullptr));
    thread_local Pcre2MatchContext ctx = [] {
      Pcre2MatchContext c(pcre2_match_context_create(nullptr));
      if (c) pcre2_set_match_limit(c.get(), 100000);
      return c;
    }();
    if (!md || !ctx) return false;
    int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md.get(), ctx.get());
    if (rc < 0) return false;
    if (rc == 0) rc = 8;  // more groups than the match data holds: those past it read as unset
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    groups.assign(8, std::string());
    if (set != nullptr) set->assign(8, false);
    for (int i = 0; i < rc && i < 8; ++i) {
      if (ov[2 * i] == PCRE2_UNSET) continue;
      groups[static_cast<std::size_t>(i)] = std::string(s.substr(ov[2 * i], ov[2 * i + 1] - ov[2 * i]));
      if (set != nullptr) (*set)[static_cast<std::size_t>(i)] = true;
    }
    return true;
  }

 private:
  Pcre2Code code_;
};

const std::string kIp = R"((\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}))";


enum class Parsed { kSkipped, kUnparseable, kRelay };

// One field, unfolded and white space collapsed: a relay, a field that is
// no hop (local delivery, no "from"), or a hop we cannot read.
Parsed parse_line(std::string_view in, Relay& r) {
  std::string s;
  s.reserve(in.size());
  for (char c : in) {
    const bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
    if (!space) s.push_back(c);
    else if (!s.empty() && s.back() != ' ') s.push_back(' ');
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == ';')) s.pop_back();
  std::vector<std::string> m;
  std::vector<bool> set;
  static const Re kFrom(R"(^\(?from )", true);
  if (!kFrom.search(s, m)) return Parsed::kSkipped;
  if (s.find("with local for") != std::string::npos) return Parsed::kSkipped;
  static const Re kLocal(R"(^from (\S+) by [^\s;]+ ?;)", true);
  static const Re kBracketIp(R"(^\[[\d.]+\]$)");
  std::vector<std::string> g2;
  if (kLocal.search(s, m) && !kBracketIp.search(m[1], g2)) return Parsed::kSkipped;
  if (s.find("mail pickup service by ") != std::string::npos && s.find("Microsoft SMTPSVC") != std::string::npos)
    return Parsed::kSkipped;
  static const Re kDate(
      R"([\s;]+(?:(?:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un)), )?\d+ (?:J(?:an|u[nl])|Feb|Ma[ry]|A(?:pr|ug)|Sep|Oct|Nov|Dec) \d+ \d+:\d+(?::\d+)? \S+$)");
  // The date is at the end: look at the last 80 bytes only.
  const std::size_t tail = s.size() > 80 ? s.size() - 80 : 0;
  if (kDate.search(std::string_view(s).substr(tail), m)) s.resize(tail + std::string_view(s).substr(tail).rfind(m[0]));
  static const Re kId(R"( id <?([^\s<>;]{3,}))");
  if (kId.search(s, m)) r.id = m[1];
  static const Re kHeloEq(R"(\bhelo=([-A-Za-z0-9.^+_&:=?!@%*$\\/]+))");
  static const Re kHeloWord(R"(\b(?:HELO|EHLO) ([-A-Za-z0-9.^+_&:=?!@%*$\\/]+))");
  if (kHeloEq.search(s, m) || kHeloWord.search(s, m)) r.helo = m[1];
  static const Re kBy(R"( by (\S+?)(?:[^-A-Za-z0-9;.]|$))");
  if (kBy.search(s, m)) r.by = m[1];
  static const Re kAuth(R"( with ((?:ES|L|UTF8S|UTF8L)MTPS?A|ASMTP|HTTP[SU]?)(?: |;|$))", true);
  if (s.find(" by ") != std::string::npos && kAuth.search(s, m)) r.auth = m[1];
  // The "from" clause alone.
  std::string from = s.substr(s.find("from ") + 5);
  if (std::size_t by = from.find(" by "); by != std::string::npos) from.resize(by);
  auto set_rdns = [&](std::string v) {
    if (std::size_t at = v.find('@'); at != std::string::npos) {
      r.ident = v.substr(0, at);
      v = v.substr(at + 1);
    }
    if (v == "unknown" || v == "UNKNOWN") v.clear();
    while (!v.empty() && v.back() == '.') v.pop_back();
    r.rdns = v;
  };
  static const Re kExim(R"(^(\S+) \(\[)" + kIp + R"(\](?::\d+)?(?: helo=(\S+))?\))");
  static const Re kEximNoRdns(R"(^\[)" + kIp + R"(\](?::\d+)? \(helo=(\S+?)\))");
  static const Re kSendmail(R"(^(\S+) \(([^\s()\[\]]+)(?: \(may be forged\))? \[)" + kIp + R"(\])");
  static const Re kNoRdns(R"(^(\S+) \(\[)" + kIp + R"(\]\))");
  static const Re kQmailHelo(R"(^(\S+) \(HELO (\S+)\) \()" + kIp + R"(\))");
  static const Re kQmail(R"(^(\S+) \()" + kIp + R"(\))");
  static const Re kAnyIp(R"([\[(])" + kIp + R"([\])])");
  // "from 192.0.2.1 (SquirrelMail authenticated user jo) by host with HTTP" (webmail)
  static const Re kIpComment("^" + kIp + R"( \([A-Za-z][^)]+\))");
  if (kSendmail.search(from, m)) {
    if (r.helo.empty()) r.helo = m[1];
    set_rdns(m[2]);
    r.ip = m[3];
  } else if (kExim.search(from, m, &set) && (set[3] || s.find("Exim") != std::string::npos)) {
    set_rdns(m[1]);
    r.ip = m[2];
    if (set[3]) r.helo = m[3];
  } else if (kNoRdns.search(from, m)) {
    if (r.helo.empty()) r.helo = m[1];
    r.ip = m[2];
  } else if (kEximNoRdns.search(from, m)) {
    r.ip = m[1];
    r.helo = m[2];
  } else if (kQmailHelo.search(from, m)) {
    set_rdns(m[1]);
    r.helo = m[2];
    r.ip = m[3];
  } else if (kQmail.search(from, m)) {
    set_rdns(m[1]);
    if (r.helo.empty()) r.helo = r.rdns;
    r.ip = m[2];
  } else if (kIpComment.search(from, m) && s.find(" with ") != std::string::npos) {
    r.ip = m[1];
  } else if (kAnyIp.search(from, m)) {
    r.ip = m[1];
    std::size_t sp = from.find(' ');
    if (r.helo.empty()) r.helo = from.substr(0, sp);
  }
  if (r.helo.size() > 2 && r.helo.front() == '[' && r.helo.back() == ']') r.helo = r.helo.substr(1, r.helo.size() - 2);
  return r.ip.empty() ? Parsed::kUnparseable : Parsed::kRelay;
}

}  // namespace

bool private_ipv4(std::string_view ip) {
  unsigned a = 0, b = 0;
  if (std::sscanf(std::string(ip).c_str(), "%u.%u", &a, &b) != 2) return false;
  return a == 10 || a == 127 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168) || (a == 169 && b == 254);
}

Relays parse_relays(const Message& m, const std::vector<std::string>& originating) {
  Relays out;
  bool trusted = true;
  auto add = [&](Relay r) {
    // 0.0.0.0/8 (a relay that did not know its peer) is trusted too.
    if (trusted && !private_ipv4(r.ip) && r.ip.rfind("0.", 0) != 0 && r.auth.empty()) trusted = false;
    r.trusted = trusted;
    out.relays.push_back(std::move(r));
  };
  for (const Header* h : m.find("received")) {
    Relay r;
    const Parsed p = parse_line(h->decoded, r);
    if (p != Parsed::kRelay) {
      if (p == Parsed::kUnparseable) ++out.unparseable;
      if (trusted) ++out.trusted_fields;
      continue;
    }
    add(std::move(r));
    if (trusted) ++out.trusted_fields;
  }
  // SpamAssassin's IPV4_ADDRESS: four octets of at most 255, on word boundaries.
  static const Re kIpv4(R"(\b(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)(?:\.(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)){3}\b)");
  for (const std::string& name : originating) {
    const std::vector<const Header*> fields = m.find(name);
    if (fields.empty()) continue;
    std::vector<std::string> g;
    if (!kIpv4.search(fields.back()->decoded, g)) continue;
    Relay r;
    r.ip = g[0];
    add(std::move(r));
  }
  return out;
}

std::string fields_by_trust(const Message& m, const Relays& r, bool trusted) {
  std::string out;
  std::size_t received = 0;
  bool below = r.trusted_fields == 0;
  for (const Header& h : m.headers) {
    if (h.lname == "received") {
      if (received == r.trusted_fields) below = true;
      ++received;
    }
    if (below == trusted) continue;
    out += h.name + ": " + h.decoded + "\n";
  }
  return out;
}

std::string relays_string(const std::vector<Relay>& relays, bool trusted) {
  std::string out;
  for (const Relay& r : relays) {
    if (r.trusted != trusted) continue;
    if (!out.empty()) out.push_back(' ');
    out += "[ ip=" + r.ip + " rdns=" + r.rdns + " helo=" + r.helo + " by=" + r.by + " ident=" + r.ident +
           " envfrom= intl=" + (r.trusted ? "1" : "0") + " id=" + r.id + " auth=" + r.auth + " msa=0 ]";
  }
  return out;
}

}  // namespace spamgate
