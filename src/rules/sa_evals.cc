// sa_evals.cc - the eval: tests of SpamAssassin's set that we implement (see
// sa_evals.h). Each says which plugin function it follows.
#include "rules/sa_evals.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <optional>

#include "message/addresses.h"
#include "message/date.h"
#include "rules/ruleset.h"
#include "spamgate/check.h"

namespace spamgate {
namespace {

std::string lower(std::string_view s) { return ascii_lower(s); }

bool ipv4(std::string_view s) {
  int parts = 0, digits = 0;
  for (char c : s) {
    if (c == '.') {
      if (digits == 0) return false;
      ++parts;
      digits = 0;
    } else if (std::isdigit(static_cast<unsigned char>(c)) && digits < 3) {
      ++digits;
    } else {
      return false;
    }
  }
  return parts == 3 && digits > 0;
}


std::string first_addr(const Message& m, const char* field) {
  for (const Header* h : m.find(field)) {
    auto a = header_addresses(h->decoded);
    if (!a.empty()) return a.front();
  }
  return {};
}

// PerMsgStatus::get_envelope_from, without relays' envelope-from: the
// first of X-Envelope-From, Envelope-Sender, Return-Path, unless a Received
// field comes before it (a field added before our hop is not trusted).
std::string envelope_from(const SaEvalInput& in) {
  if (!in.envelope.mail_from.empty()) {
    auto a = header_addresses(in.envelope.mail_from);
    return a.empty() ? std::string() : a.front();
  }
  // X-Sender with a fetchmail hop: the envelope was rewritten on the way.
  if (!first_addr(in.message, "x-sender").empty()) {
    for (const Header* h : in.message.find("received"))
      if (h->decoded.find("(fetchmail") != std::string::npos) return {};
  }
  for (const char* f : {"x-envelope-from", "envelope-sender", "return-path"}) {
    bool after_received = false;
    for (const Header& h : in.message.headers) {
      if (h.lname == "received") after_received = true;
      if (h.lname != f) continue;
      auto a = header_addresses(h.decoded);
      if (a.empty()) break;
      if (!after_received) return a.front();
      if (std::string_view(f) == "x-envelope-from") return {};  // SpamAssassin gives up here
      break;
    }
  }
  return {};
}

std::string domain_of(const std::string& addr) {
  std::size_t at = addr.rfind('@');
  return at == std::string::npos ? std::string() : addr.substr(at + 1);
}

// HTMLEval html_test('html'): an HTML part was parsed (HTML.pm sets "html"
// as it starts on a text/html part).
bool html_message(const SaEvalInput& in, const std::vector<std::string>&) { return in.message.has_text_html; }

// RelayEval check_no_relays / check_all_trusted.
bool no_relays(const SaEvalInput& in, const std::vector<std::string>&) {
  return in.relays.relays.empty() && in.relays.unparseable == 0;
}
bool all_trusted(const SaEvalInput& in, const std::vector<std::string>&) {
  const auto& r = in.relays.relays;
  return !r.empty() && in.relays.unparseable == 0 &&
         std::all_of(r.begin(), r.end(), [](const Relay& x) { return x.trusted; });
}

// RelayEval helo_ip_mismatch: an untrusted relay's HELO is a public IPv4
// address in another /24 than the address it connected from.
bool helo_ip_mismatch(const SaEvalInput& in, const std::vector<std::string>&) {
  for (const Relay& r : in.relays.relays) {
    if (r.trusted || !ipv4(r.helo) || private_ipv4(r.helo)) continue;
    if (!ipv4(r.ip) || private_ipv4(r.ip) || r.helo == r.ip) continue;
    const std::string prefix = r.helo.substr(0, r.helo.rfind('.') + 1);
    if (r.ip.rfind(prefix, 0) != 0) return true;
  }
  return false;
}

// MIMEEval check_for_mime_html_only.
bool mime_html_only(const SaEvalInput& in, const std::vector<std::string>&) {
  return in.message.has_text_html && !in.message.has_text_plain;
}

// HeaderEval check_for_missing_to_header: no To (nor Apparently-To) field
// at all; an empty one is a field (SpamAssassin reads it as "\n").
bool missing_to(const SaEvalInput& in, const std::vector<std::string>&) {
  return in.message.find("to").empty() && in.message.find("apparently-to").empty();
}

// HeaderEval subject_is_all_caps.
bool subject_all_caps(const SaEvalInput& in, const std::vector<std::string>&) {
  const Header* h = in.message.first("subject");
  if (h == nullptr) return false;
  std::string s = h->decoded;
  // Leading "Re:", "Fwd:"... (Bug 6805)
  static const char* const kPrefixes[] = {"re", "fwd", "fw", "aw", "antwort", "wg", "sv", "vb", "vs", "vl"};
  for (bool again = true; again;) {
    again = false;
    for (const char* p : kPrefixes) {
      const std::size_t n = std::char_traits<char>::length(p);
      if (s.size() > n && lower(s.substr(0, n)) == p && s[n] == ':') {
        s.erase(0, n + 1);
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
        again = true;
      }
    }
  }
  if (s.find_first_of(" \t") == std::string::npos || s.size() < 10) return false;
  const std::string raw = lower(h->raw);
  for (const char* cs : {"koi", "jp", "jis", "euc", "gb", "big5", "isoir", "cp1251", "windows-1251", "georgianps", "pt154", "tis"}) {
    for (std::size_t at = raw.find("=?"); at != std::string::npos; at = raw.find("=?", at + 2)) {
      std::size_t q = raw.find('?', at + 2);
      if (q != std::string::npos && raw.substr(at + 2, q - at - 2).find(cs) != std::string::npos) return false;
    }
  }
  std::string letters;
  for (char c : s)
    if (std::isalpha(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 128) letters.push_back(c);
  return !letters.empty() && std::none_of(letters.begin(), letters.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)); });
}

// HeaderEval check_equal_from_domains: From's and the envelope sender's
// last two labels differ.
bool from_domains_differ(const SaEvalInput& in, const std::vector<std::string>&) {
  auto two_labels = [](std::string d) {
    d = lower(d);
    std::size_t last = d.rfind('.');
    if (last == std::string::npos || last == 0) return d;
    std::size_t prev = d.rfind('.', last - 1);
    return prev == std::string::npos ? d : d.substr(prev + 1);
  };
  const std::string from = two_labels(domain_of(first_addr(in.message, "from")));
  const std::string env = two_labels(domain_of(envelope_from(in)));
  return !from.empty() && !env.empty() && from != env;
}

// HeaderEval check_for_shifted_date(min, max): the Date field against the
// Received dates (the closest one), in hours.
std::optional<std::int64_t> date_diff(const Message& m) {
  constexpr std::int64_t kAnyTime = std::numeric_limits<std::int64_t>::max() / 4;
  std::optional<std::int64_t> date;
  for (const char* f : {"resent-date", "date"}) {
    for (const Header* h : m.find(f)) {
      if (!h->decoded.empty()) date = parse_date(h->decoded, kAnyTime);
      if (date) break;
    }
    if (date) break;
  }
  if (!date) return std::nullopt;
  std::vector<std::string> received;
  for (const Header* h : m.find("received")) received.push_back(h->decoded);
  if (received.empty()) return std::nullopt;
  // Our own hop and a fetchmail hop below it are left out.
  std::vector<std::string> local;
  auto is_local = [](const std::string& r) {
    return r.find("from localhost ") != std::string::npos || r.find("127.0.0.1") != std::string::npos ||
           (r.find("qmail ") != std::string::npos && r.find("invoked by uid") != std::string::npos);
  };
  if (is_local(received.front())) {
    local.push_back(received.front());
    received.erase(received.begin());
  }
  if (!received.empty() && received.front().find("by localhost with ") != std::string::npos &&
      received.front().find("(fetchmail-") != std::string::npos) {
    received.erase(received.begin());
  } else if (!local.empty()) {
    received.insert(received.begin(), local.front());
  }
  std::vector<std::int64_t> diffs;
  for (const std::string& r : received) {
    // The date after the last ';' (SpamAssassin: "\s.?\d+ \S\S\S \d+ \d+:\d+:\d+ \S+").
    std::size_t semi = r.rfind(';');
    if (semi == std::string::npos) continue;
    if (auto t = parse_date(r.substr(semi + 1), kAnyTime)) diffs.push_back(*date - *t);
  }
  if (diffs.empty()) return std::nullopt;
  if (diffs.size() > 1 && diffs.back() == 0) diffs.pop_back();
  return *std::min_element(diffs.begin(), diffs.end(),
                           [](std::int64_t a, std::int64_t b) { return std::llabs(a) < std::llabs(b); });
}

bool shifted_date(const SaEvalInput& in, const std::vector<std::string>& args) {
  if (args.size() != 2) return false;
  if (!in.date_diff) in.date_diff = date_diff(in.message);
  const std::int64_t diff = in.date_diff->value_or(0);
  auto bound = [](const std::string& a, bool& any) {
    any = a == "undef";
    return any ? 0 : static_cast<std::int64_t>(std::strtod(a.c_str(), nullptr) * 3600);
  };
  bool no_min = false, no_max = false;
  const std::int64_t lo = bound(args[0], no_min), hi = bound(args[1], no_max);
  return (no_min || diff >= lo) && (no_max || diff < hi);
}

// FreeMail _is_freemail: a freemail domain (freemail_domains), and not a
// role account (its default welcomelist).
bool is_freemail(const SaEvalInput& in, std::string a) {
  a = lower(a);
  static const char* const kRoles[] = {"abuse@", "support@", "sales@", "info@", "helpdesk@", "contact@", "kontakt@",
                                       "postmaster@", "hostmaster@", "domainmaster@"};
  if (std::any_of(std::begin(kRoles), std::end(kRoles), [&](const char* r) { return a.rfind(r, 0) == 0; })) return false;
  const std::string d = domain_of(a);
  return !d.empty() && in.freemail_domains.contains(d);
}

// FreeMail check_freemail_from([regex]): a sender address at a freemail
// domain (freemail_domains), not a role account.
bool freemail_from(const SaEvalInput& in, const std::vector<std::string>& args) {
  if (!args.empty() || in.freemail_domains.empty()) return false;  // the regex form is not implemented
  std::vector<std::string> addrs;
  std::string resent = first_addr(in.message, "resent-from");
  if (!resent.empty()) addrs.push_back(resent);
  else
    for (const char* f : {"from", "envelope-sender", "resent-sender", "x-envelope-from"}) {
      std::string a = first_addr(in.message, f);
      if (!a.empty()) addrs.push_back(a);
    }
  if (resent.empty()) {
    std::string e = envelope_from(in);
    if (!e.empty()) addrs.push_back(e);
  }
  return std::any_of(addrs.begin(), addrs.end(), [&](const std::string& a) { return is_freemail(in, a); });
}

// FreeMail check_freemail_header(header[, '\d@']): an address of that
// field (or of the envelope sender) at a freemail domain, its local part
// ending in a digit when asked.
bool freemail_header(const SaEvalInput& in, const std::vector<std::string>& args) {
  if (in.freemail_domains.empty() || args.empty()) return false;
  std::vector<std::string> addrs;
  if (args[0] == "EnvelopeFrom") {
    std::string e = envelope_from(in);
    if (!e.empty()) addrs.push_back(e);
  } else {
    for (const Header* h : in.message.find(lower(args[0])))
      for (std::string& a : header_addresses(h->decoded)) addrs.push_back(std::move(a));
  }
  for (const std::string& a : addrs) {
    if (!is_freemail(in, a)) continue;
    if (args.size() < 2) return true;
    std::size_t at = a.rfind('@');
    if (at > 0 && at != std::string::npos && std::isdigit(static_cast<unsigned char>(a[at - 1]))) return true;
  }
  return false;
}

// Message check_msg_parse_flags: what the MIME parse noticed.
bool parse_flag(const SaEvalInput& in, const std::vector<std::string>& args) {
  if (args.size() != 1) return false;
  if (args[0] == "mime_epilogue_exists") return in.message.defects.mime_epilogue;
  if (args[0] == "missing_head_body_separator") return in.message.defects.no_header_body_separator;
  return false;
}

// MIMEEval check_for_mime: counts from every part's MIME fields.
bool mime_flag(const SaEvalInput& in, const std::vector<std::string>& args) {
  if (args.size() != 1) return false;
  for (const MimePart& p : in.message.parts) {
    if (args[0] == "mime_base64_count" && p.encoding == "base64") return true;
    if (args[0] == "mime_qp_count" && p.encoding == "quoted-printable") return true;
    if (args[0] == "mime_attachment") {
      for (const MimePart::Field& f : p.headers)
        if (f.lname == "content-disposition" && lower(f.decoded).find("attachment") != std::string::npos) return true;
    }
  }
  return false;
}

}  // namespace

void DomainList::add(std::string domain) {
  domain = ascii_lower(domain);
  if (domain.find_first_of("*?") == std::string::npos) exact_.insert(std::move(domain));
  else globs_.push_back(std::move(domain));
}

bool DomainList::contains(std::string_view domain) const {
  if (exact_.count(std::string(domain)) != 0) return true;
  return std::any_of(globs_.begin(), globs_.end(), [&](const std::string& g) { return glob_match(g, domain); });
}

SaEvalFn sa_eval(std::string_view fn, const std::vector<std::string>& args) {
  if (fn == "html_test") return args.size() == 1 && args[0] == "html" ? html_message : nullptr;
  if (fn == "check_no_relays") return no_relays;
  if (fn == "check_all_trusted") return all_trusted;
  if (fn == "helo_ip_mismatch") return helo_ip_mismatch;
  if (fn == "check_for_mime_html_only") return mime_html_only;
  if (fn == "check_for_missing_to_header") return missing_to;
  if (fn == "subject_is_all_caps") return subject_all_caps;
  if (fn == "check_equal_from_domains") return from_domains_differ;
  if (fn == "check_for_shifted_date") return args.size() == 2 ? shifted_date : nullptr;
  if (fn == "check_freemail_from") return args.empty() ? freemail_from : nullptr;
  if (fn == "check_freemail_header")
    return args.size() == 1 || (args.size() == 2 && args[1] == "\\d@") ? freemail_header : nullptr;
  if (fn == "check_msg_parse_flags")
    return args.size() == 1 && (args[0] == "mime_epilogue_exists" || args[0] == "missing_head_body_separator")
               ? parse_flag
               : nullptr;
  if (fn == "check_for_mime")
    return args.size() == 1 && (args[0] == "mime_base64_count" || args[0] == "mime_qp_count" || args[0] == "mime_attachment")
               ? mime_flag
               : nullptr;
  return nullptr;
}

bool parse_eval_call(std::string_view text, std::string& function, std::vector<std::string>& args) {
  std::size_t open = text.find('(');
  std::size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return false;
  function = std::string(text.substr(0, open));
  while (!function.empty() && std::isspace(static_cast<unsigned char>(function.back()))) function.pop_back();
  args.clear();
  std::string_view inner = text.substr(open + 1, close - open - 1);
  std::string cur;
  char quote = 0;
  bool any = false;
  for (char c : inner) {
    if (quote != 0) {
      if (c == quote) quote = 0;
      else cur.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      any = true;
    } else if (c == ',') {
      args.push_back(cur);
      cur.clear();
      any = false;
    } else if (!std::isspace(static_cast<unsigned char>(c))) {
      cur.push_back(c);
      any = true;
    }
  }
  if (any || !cur.empty() || !args.empty()) args.push_back(cur);
  return true;
}

}  // namespace spamgate
