// config.cc - the TOML config loader (see config.h).
#include "config/config.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "spamgate/message.h"
#include "spamgate/verdict.h"
#include "util/cidr.h"

namespace spamgate {

namespace fs = std::filesystem;


bool parse_tenths(const std::string& text, std::int64_t& tenths) {
  if (text.empty() || text.size() > 20) return false;
  std::size_t i = 0;
  bool neg = false;
  if (text[0] == '-' || text[0] == '+') {
    neg = text[0] == '-';
    i = 1;
  }
  std::int64_t whole = 0;
  std::size_t digits = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    // 15 digits at most: whole * 10 + frac stays far inside int64 (a score
    // or threshold of 10^15 is out of every range its callers accept)
    if (++digits > 15) return false;
    whole = whole * 10 + (text[i] - '0');
    ++i;
  }
  if (digits == 0) return false;
  std::int64_t frac = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::size_t fd = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (fd == 0) frac = text[i] - '0';
      else if (text[i] != '0') return false;  // a second decimal that matters
      ++i;
      ++fd;
    }
    if (fd == 0) return false;
  }
  if (i != text.size()) return false;
  tenths = (whole * 10 + frac) * (neg ? -1 : 1);
  return true;
}

std::string local_fqdn() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string host(buf);
  if (host.find('.') != std::string::npos) return host;
  std::ifstream hosts("/etc/hosts");
  std::string line;
  while (std::getline(hosts, line)) {
    std::size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string addr, name;
    std::vector<std::string> names;
    words >> addr;
    while (words >> name) names.push_back(name);
    bool mentions = false;
    for (const auto& n : names) mentions = mentions || n == host;
    if (!mentions) continue;
    for (const auto& n : names) {
      if (n.rfind(host + ".", 0) == 0) return n;
    }
  }
  return host;
}

namespace {

// Printable text for a header: no control characters, bounded length.
bool header_safe(const std::string& s, std::size_t max_len) {
  if (s.size() > max_len) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

class Loader {
 public:
  Loader(std::string path, std::vector<Diagnostic>& diags) : path_(std::move(path)), diags_(diags) {}

  void error(const toml::node& n, const std::string& msg) {
    diags_.push_back({path_, static_cast<int>(n.source().begin.line), msg});
  }

  void string_key(const toml::node& n, const std::string& key, std::string& out,
                  std::size_t max_len, bool allow_empty) {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v) return error(n, "'" + key + "' must be a string");
    if (!header_safe(*v, max_len))
      return error(n, "'" + key + "' must be printable text of at most " + std::to_string(max_len) +
                          " characters");
    if (!allow_empty && v->empty()) return error(n, "'" + key + "' must not be empty");
    out = *v;
  }

  template <typename T>
  void int_key(const toml::node& n, const std::string& key, T& out, std::int64_t lo,
               std::int64_t hi) {
    if (!n.is_integer()) return error(n, "'" + key + "' must be an integer");
    std::int64_t v = *n.value<std::int64_t>();
    if (v < lo || v > hi)
      return error(n, "'" + key + "' must be between " + std::to_string(lo) + " and " +
                          std::to_string(hi));
    out = static_cast<T>(v);
  }

  std::string resolve(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(path_).parent_path() / p).lexically_normal().string();
  }

  void load(const toml::table& root, Config& c) {
    using Handler = std::function<void(const toml::node&)>;
    const toml::node* reject_node = nullptr;
    const std::map<std::string, Handler> top = {
        {"threshold", [&](const toml::node& n) { threshold(n, c); }},
        {"tests_with_scores", [&](const toml::node& n) { bool_key(n, "tests_with_scores", c.tests_with_scores); }},
        {"reject_threshold", [&](const toml::node& n) {
           std::int64_t t = 0;
           tenths_key(n, "reject_threshold", t, c.reject_threshold_text);
           c.reject_threshold_tenths = t;
           reject_node = &n;
         }},
        {"subject_tag", [&](const toml::node& n) { string_key(n, "subject_tag", c.subject_tag, 40, false); }},
        {"service_name", [&](const toml::node& n) { string_key(n, "service_name", c.service_name, 200, false); }},
        {"hostname", [&](const toml::node& n) { string_key(n, "hostname", c.hostname, 253, true); }},
        {"support_url", [&](const toml::node& n) { string_key(n, "support_url", c.support_url, 400, false); }},
        {"rules_dir", [&](const toml::node& n) {
           std::string one;
           string_key(n, "rules_dir", one, 4096, false);
           if (!c.rules_dirs.empty()) error(n, "give rules_dir or rules_dirs, not both");
           else if (!one.empty()) c.rules_dirs.push_back(one);
         }},
        {"rules_dirs", [&](const toml::node& n) {
           if (!c.rules_dirs.empty()) return error(n, "give rules_dir or rules_dirs, not both");
           string_list(n, "rules_dirs", c.rules_dirs);
         }},
        {"local_rules", [&](const toml::node& n) { string_key(n, "local_rules", c.local_rules, 4096, true); }},
        {"recipient_settings",
         [&](const toml::node& n) { string_key(n, "recipient_settings", c.recipient_settings, 4096, true); }},
        {"rules_canary_dirs", [&](const toml::node& n) { string_list(n, "rules_canary_dirs", c.rules_canary_dirs); }},
        {"rules_watch_seconds", [&](const toml::node& n) { int_key(n, "rules_watch_seconds", c.rules_watch_seconds, 0, 86400); }},
        {"rules_cache_dir", [&](const toml::node& n) { string_key(n, "rules_cache_dir", c.rules_cache_dir, 4096, true); }},
        {"max_scan_bytes", [&](const toml::node& n) { int_key(n, "max_scan_bytes", c.limits.max_scan_bytes, 1024, 1LL << 30); }},
        {"limits", [&](const toml::node& n) { limits(n, c.limits); }},
        {"log", [&](const toml::node& n) { log(n, c); }},
        {"milter", [&](const toml::node& n) { milter(n, c.milter); }},
        {"dns", [&](const toml::node& n) { dns(n, c.dns); }},
        {"dnsbl", [&](const toml::node& n) { dnsbl(n, c.dnsbl, "dnsbl"); }},
        {"uribl", [&](const toml::node& n) { dnsbl(n, c.uribl, "uribl"); }},
        {"auth", [&](const toml::node& n) { auth(n, c.auth); }},
        {"clamav", [&](const toml::node& n) { clamav(n, c); }},
        {"bayes", [&](const toml::node& n) { bayes(n, c.bayes); }},
        {"outbound", [&](const toml::node& n) { outbound(n, c.outbound); }},
        {"metrics", [&](const toml::node& n) { metrics(n, c.metrics); }},
        {"memory", [&](const toml::node& n) { memory(n, c.memory); }},
        {"history", [&](const toml::node& n) { history(n, c.history); }},
        {"console", [&](const toml::node& n) { console(n, c.console); }},
    };
    walk(root, top, "");
    // Rejecting below the tag level would refuse mail the header calls ham.
    if (reject_node != nullptr && c.reject_threshold_tenths && *c.reject_threshold_tenths <= c.threshold_tenths)
      error(*reject_node, "'reject_threshold' must be greater than 'threshold' (" + c.threshold_text + ")");
  }

 private:
  void walk(const toml::table& t, const std::map<std::string, std::function<void(const toml::node&)>>& keys,
            const std::string& prefix) {
    for (const auto& [k, v] : t) {
      std::string key(k.str());
      auto it = keys.find(key);
      if (it == keys.end()) {
        diags_.push_back({path_, static_cast<int>(k.source().begin.line),
                          "unknown key '" + prefix + key + "'"});
        continue;
      }
      it->second(v);
    }
  }

  void threshold(const toml::node& n, Config& c) { tenths_key(n, "threshold", c.threshold_tenths, c.threshold_text); }

  // A score key (threshold, reject_threshold): a number with at most one
  // decimal, kept in tenths and as printed.
  void tenths_key(const toml::node& n, const std::string& key, std::int64_t& tenths, std::string& shown) {
    std::string text;
    if (n.is_integer()) {
      text = std::to_string(*n.value<std::int64_t>());
    } else if (n.is_floating_point()) {
      double d = *n.value<double>();
      double scaled = d * 10.0;
      if (!std::isfinite(d) || std::fabs(scaled - std::round(scaled)) > 1e-6 || std::fabs(d) > 1e6)
        return error(n, "'" + key + "' must be a number with at most one decimal, e.g. 5 or 5.5");
      tenths = static_cast<std::int64_t>(std::llround(scaled));
      shown = tenths % 10 == 0 ? std::to_string(tenths / 10) : format_tenths(tenths);
      return;
    } else {
      return error(n, "'" + key + "' must be a number, e.g. 5 or 5.5");
    }
    if (!parse_tenths(text, tenths) || std::llabs(tenths) > 10000000) return error(n, "'" + key + "' is out of range");
    shown = text;
  }

  void limits(const toml::node& n, Limits& l) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'limits' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"max_headers", [&](const toml::node& v) { int_key(v, "limits.max_headers", l.max_headers, 1, 100000); }},
        {"max_header_bytes", [&](const toml::node& v) { int_key(v, "limits.max_header_bytes", l.max_header_bytes, 256, 1 << 24); }},
        {"max_mime_depth", [&](const toml::node& v) { int_key(v, "limits.max_mime_depth", l.max_mime_depth, 1, 100); }},
        {"max_parts", [&](const toml::node& v) { int_key(v, "limits.max_parts", l.max_parts, 1, 100000); }},
        {"max_uris", [&](const toml::node& v) { int_key(v, "limits.max_uris", l.max_uris, 1, 1000000); }},
        {"max_text_bytes", [&](const toml::node& v) { int_key(v, "limits.max_text_bytes", l.max_text_bytes, 1024, 1LL << 30); }},
        {"max_header_deletions", [&](const toml::node& v) { int_key(v, "limits.max_header_deletions", l.max_header_deletions, 1, 5000); }},
        {"max_uri_lookups", [&](const toml::node& v) { int_key(v, "limits.max_uri_lookups", l.max_uri_lookups, 0, 1000); }},
        {"pcre_match_limit", [&](const toml::node& v) { int_key(v, "limits.pcre_match_limit", l.pcre_match_limit, 1000, 1000000000); }},
    };
    walk(*t, keys, "limits.");
  }

  void log(const toml::node& n, Config& c) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'log' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"level", [&](const toml::node& v) {
           std::string level;
           string_key(v, "log.level", level, 20, false);
           static const char* const kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
           bool ok = false;
           for (const char* k : kLevels) ok = ok || level == k;
           if (!level.empty() && !ok)
             return error(v, "'log.level' must be one of trace, debug, info, warn, error, critical, off");
           if (ok) c.log_level = level;
         }},
        {"target", [&](const toml::node& v) { string_key(v, "log.target", c.log_target, 4096, false); }},
    };
    walk(*t, keys, "log.");
  }

  void policy(const toml::node& n, const std::string& key, SenderPolicy& out) {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v || (*v != "tag" && *v != "log" && *v != "skip"))
      return error(n, "'" + key + "' must be \"tag\", \"log\" or \"skip\"");
    out = *v == "tag" ? SenderPolicy::kTag : *v == "log" ? SenderPolicy::kLog : SenderPolicy::kSkip;
  }

  void failure(const toml::node& n, const std::string& key, FailureAction& out, bool internal) {
    auto v = n.value<std::string>();
    const char* first = internal ? "accept" : "continue";
    if (!n.is_string() || !v || (*v != first && *v != "tempfail"))
      return error(n, "'" + key + "' must be \"" + first + "\" or \"tempfail\"");
    out = *v == "tempfail" ? FailureAction::kTempfail : internal ? FailureAction::kAccept : FailureAction::kContinue;
  }

  void milter(const toml::node& n, MilterConfig& m) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'milter' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"socket", [&](const toml::node& v) {
           string_key(v, "milter.socket", m.socket, 4096, false);
           const bool inet = m.socket.rfind("inet:", 0) == 0 || m.socket.rfind("inet6:", 0) == 0;
           if (!inet && m.socket.rfind("unix:", 0) != 0 && m.socket.rfind("local:", 0) != 0)
             return error(v, "'milter.socket' must look like inet:PORT@HOST, inet6:PORT@HOST or unix:PATH");
           if (inet) {
             const std::string rest = m.socket.substr(m.socket.find(':') + 1);
             const std::size_t at = rest.find('@');
             const std::string port = rest.substr(0, at);
             if (at == std::string::npos || at + 1 >= rest.size() || !valid_port(port))
               error(v, "'milter.socket' must look like inet:PORT@HOST with a port from 1 to 65535, e.g. inet:8895@127.0.0.1");
           }
         }},
        {"timeout", [&](const toml::node& v) { int_key(v, "milter.timeout", m.timeout_seconds, 1, 3600); }},
        {"drain_timeout", [&](const toml::node& v) { int_key(v, "milter.drain_timeout", m.drain_seconds, 0, 3600); }},
        {"max_connections",
         [&](const toml::node& v) { int_key(v, "milter.max_connections", m.max_connections, 0, 100000); }},
        {"workers", [&](const toml::node& v) { int_key(v, "milter.workers", m.workers, 0, 1024); }},
        {"trusted_networks", [&](const toml::node& v) {
           const toml::array* a = v.as_array();
           if (a == nullptr) return error(v, "'milter.trusted_networks' must be a list of CIDRs");
           for (const toml::node& e : *a) {
             auto s = e.value<std::string>();
             if (!e.is_string() || !s || !Cidr::parse(*s))
               return error(e, "'milter.trusted_networks' entry is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32");
             m.trusted_networks.push_back(*s);
           }
         }},
        {"inbound", [&](const toml::node& v) { policy(v, "milter.inbound", m.inbound); }},
        {"authenticated", [&](const toml::node& v) { policy(v, "milter.authenticated", m.authenticated); }},
        {"trusted", [&](const toml::node& v) { policy(v, "milter.trusted", m.trusted); }},
        {"on_check_error", [&](const toml::node& v) { failure(v, "milter.on_check_error", m.on_check_error, false); }},
        {"on_internal_error", [&](const toml::node& v) { failure(v, "milter.on_internal_error", m.on_internal_error, true); }},
        {"on_check_error_by_check", [&](const toml::node& v) {
           const toml::table* bt = v.as_table();
           if (bt == nullptr) return error(v, "'milter.on_check_error_by_check' must be a table such as { rules = \"tempfail\" }");
           for (const auto& [k, e] : *bt) {
             FailureAction a = FailureAction::kContinue;
             failure(e, "milter.on_check_error_by_check." + std::string(k.str()), a, false);
             m.on_check_error_by_check[std::string(k.str())] = a;
           }
         }},
    };
    walk(*t, keys, "milter.");
  }

  void dns(const toml::node& n, DnsConfig& d) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'dns' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"nameserver", [&](const toml::node& v) {
           string_key(v, "dns.nameserver", d.nameserver, 100, true);
           if (!d.nameserver.empty() && !valid_nameserver(d.nameserver))
             error(v, "'dns.nameserver' must be an IP address, optionally with a port: 127.0.0.1, 127.0.0.1:5353 or [::1]:53");
         }},
        {"timeout_ms", [&](const toml::node& v) { int_key(v, "dns.timeout_ms", d.timeout_ms, 50, 60000); }},
        {"tries", [&](const toml::node& v) { int_key(v, "dns.tries", d.tries, 1, 10); }},
        {"budget_ms", [&](const toml::node& v) { int_key(v, "dns.budget_ms", d.budget_ms, 50, 120000); }},
        {"cache_entries", [&](const toml::node& v) { int_key(v, "dns.cache_entries", d.cache_entries, 0, 10000000); }},
        {"breaker_failures", [&](const toml::node& v) { int_key(v, "dns.breaker_failures", d.breaker_failures, 0, 1000); }},
        {"breaker_backoff_ms", [&](const toml::node& v) { int_key(v, "dns.breaker_backoff_ms", d.breaker_backoff_ms, 100, 3600000); }},
        {"breaker_max_backoff_ms", [&](const toml::node& v) {
           int_key(v, "dns.breaker_max_backoff_ms", d.breaker_max_backoff_ms, 100, 3600000);
         }},
    };
    walk(*t, keys, "dns.");
    if (d.breaker_max_backoff_ms < d.breaker_backoff_ms)
      error(n, "'dns.breaker_max_backoff_ms' (" + std::to_string(d.breaker_max_backoff_ms) +
                   ") must not be less than 'dns.breaker_backoff_ms' (" + std::to_string(d.breaker_backoff_ms) + ")");
  }

  void bool_key(const toml::node& n, const std::string& key, bool& out) {
    if (!n.is_boolean()) return error(n, "'" + key + "' must be true or false");
    out = *n.value<bool>();
  }

  void auth(const toml::node& n, AuthConfig& a) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'auth' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"spf", [&](const toml::node& v) { bool_key(v, "auth.spf", a.spf); }},
        {"dkim", [&](const toml::node& v) { bool_key(v, "auth.dkim", a.dkim); }},
        {"dmarc", [&](const toml::node& v) { bool_key(v, "auth.dmarc", a.dmarc); }},
        {"authserv_id", [&](const toml::node& v) {
           string_key(v, "auth.authserv_id", a.authserv_id, 253, true);
           for (char ch : a.authserv_id) {
             if (ch == ' ' || ch == ';' || ch == '(' || ch == ')' || ch == '"')
               return error(v, "'auth.authserv_id' must be a host name such as mx.example.net");
           }
         }},
        {"dmarc_reject_policy", [&](const toml::node& v) {
           auto s = v.value<std::string>();
           if (!v.is_string() || !s || (*s != "score" && *s != "reject"))
             return error(v, "'auth.dmarc_reject_policy' must be \"score\" or \"reject\"");
           a.dmarc_reject = *s == "reject";
         }},
        {"dkim_max_body_bytes", [&](const toml::node& v) {
           int_key(v, "auth.dkim_max_body_bytes", a.dkim_max_body_bytes, 0, 1LL << 32);
         }},
    };
    walk(*t, keys, "auth.");
  }

  void string_list(const toml::node& n, const std::string& key, std::vector<std::string>& out) {
    const toml::array* a = n.as_array();
    if (a == nullptr) return error(n, "'" + key + "' must be a list of strings");
    out.clear();
    for (const toml::node& e : *a) {
      std::string v;
      string_key(e, key, v, 4096, false);
      if (!v.empty()) out.push_back(v);
    }
  }

  void clamav(const toml::node& n, Config& c) {
    ClamavConfig& a = c.clamav;
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'clamav' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"enabled", [&](const toml::node& v) { bool_key(v, "clamav.enabled", a.enabled); }},
        {"own_signatures", [&](const toml::node& v) { string_key(v, "clamav.own_signatures", a.own_signatures, 4096, true); }},
        {"signature_dirs", [&](const toml::node& v) { string_list(v, "clamav.signature_dirs", a.signature_dirs); }},
        {"trusted_files", [&](const toml::node& v) { string_list(v, "clamav.trusted_files", a.trusted_files); }},
        {"policy_file", [&](const toml::node& v) { string_key(v, "clamav.policy_file", a.policy_file, 4096, true); }},
        {"scan", [&](const toml::node& v) {
           auto s = v.value<std::string>();
           if (!v.is_string() || !s || (*s != "parts" && *s != "raw"))
             return error(v, "'clamav.scan' must be \"parts\" or \"raw\"");
           a.scan_raw = *s == "raw";
         }},
        {"max_av_bytes", [&](const toml::node& v) { int_key(v, "clamav.max_av_bytes", a.max_av_bytes, 1024, 1LL << 31); }},
        {"spool_dir", [&](const toml::node& v) { string_key(v, "clamav.spool_dir", a.spool_dir, 4096, false); }},
        {"temp_dir", [&](const toml::node& v) { string_key(v, "clamav.temp_dir", a.temp_dir, 4096, true); }},
        {"max_filesize", [&](const toml::node& v) { int_key(v, "clamav.max_filesize", a.max_filesize, 1024, 1LL << 32); }},
        {"max_scansize", [&](const toml::node& v) { int_key(v, "clamav.max_scansize", a.max_scansize, 1024, 1LL << 34); }},
        {"max_recursion", [&](const toml::node& v) { int_key(v, "clamav.max_recursion", a.max_recursion, 1, 100); }},
        {"max_files", [&](const toml::node& v) { int_key(v, "clamav.max_files", a.max_files, 1, 1000000); }},
        {"max_scantime_ms", [&](const toml::node& v) { int_key(v, "clamav.max_scantime_ms", a.max_scantime_ms, 100, 3600000); }},
        {"canary_dirs", [&](const toml::node& v) { string_list(v, "clamav.canary_dirs", a.canary_dirs); }},
        {"canary_max_flagged", [&](const toml::node& v) { int_key(v, "clamav.canary_max_flagged", a.canary_max_flagged, 0, 1000000); }},
        {"watch_seconds", [&](const toml::node& v) { int_key(v, "clamav.watch_seconds", a.watch_seconds, 0, 86400); }},
        {"max_parallel_large_scans", [&](const toml::node& v) { int_key(v, "clamav.max_parallel_large_scans", a.max_parallel_large_scans, 0, 10000); }},
        {"large_scan_wait_ms", [&](const toml::node& v) { int_key(v, "clamav.large_scan_wait_ms", a.large_scan_wait_ms, 0, 600000); }},
        {"on_unscannable", [&](const toml::node& v) {
           auto s = v.value<std::string>();
           if (!v.is_string() || !s || (*s != "reject" && *s != "tempfail" && *s != "score"))
             return error(v, "'clamav.on_unscannable' must be \"reject\", \"tempfail\" or \"score\"");
           a.on_unscannable = *s == "reject"     ? ClamavConfig::Unscannable::kReject
                              : *s == "tempfail" ? ClamavConfig::Unscannable::kTempfail
                                                 : ClamavConfig::Unscannable::kScore;
         }},
        {"on_error", [&](const toml::node& v) {
           FailureAction f = FailureAction::kTempfail;
           failure(v, "clamav.on_error", f, false);
           c.milter.on_check_error_by_check["clamav"] = f;
         }},
    };
    walk(*t, keys, "clamav.");
  }

  void number_key(const toml::node& v, const std::string& key, double& out) {
    if (!v.is_number()) return error(v, "'" + key + "' must be a number");
    out = v.is_integer() ? static_cast<double>(*v.value<std::int64_t>()) : *v.value<double>();
  }

  // A probability from `min` to 1.
  void probability_key(const toml::node& v, const std::string& key, double& out, double min) {
    double d = 0;
    number_key(v, key, d);
    if (!v.is_number()) return;
    if (!(d >= min && d <= 1.0)) return error(v, fmt::format("'{}' must be from {} to 1", key, min));
    out = d;
  }

  void bayes(const toml::node& n, BayesConfig& b) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'bayes' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"enabled", [&](const toml::node& v) { bool_key(v, "bayes.enabled", b.enabled); }},
        {"store", [&](const toml::node& v) {
           string_key(v, "bayes.store", b.store, 16, false);
           if (b.store != "lmdb" && b.store != "redis") error(v, "'bayes.store' must be \"lmdb\" or \"redis\"");
         }},
        {"path", [&](const toml::node& v) { string_key(v, "bayes.path", b.path, 4096, false); }},
        {"lmdb_map_bytes", [&](const toml::node& v) { int_key(v, "bayes.lmdb_map_bytes", b.lmdb_map_bytes, 1LL << 20, 1LL << 40); }},
        {"cache_seconds", [&](const toml::node& v) { int_key(v, "bayes.cache_seconds", b.cache_seconds, 0, 86400); }},
        {"cache_max_tokens", [&](const toml::node& v) { int_key(v, "bayes.cache_max_tokens", b.cache_max_tokens, 0, 1LL << 32); }},
        // The names of 0.9.0 (only LMDB had a copy then), still accepted.
        {"lmdb_cache_seconds", [&](const toml::node& v) { int_key(v, "bayes.lmdb_cache_seconds", b.cache_seconds, 0, 86400); }},
        {"lmdb_cache_max_tokens", [&](const toml::node& v) { int_key(v, "bayes.lmdb_cache_max_tokens", b.cache_max_tokens, 0, 1LL << 32); }},
        {"redis", [&](const toml::node& v) { string_key(v, "bayes.redis", b.redis, 4096, false); }},
        {"redis_prefix", [&](const toml::node& v) { string_key(v, "bayes.redis_prefix", b.redis_prefix, 200, false); }},
        {"redis_timeout_ms", [&](const toml::node& v) { int_key(v, "bayes.redis_timeout_ms", b.redis_timeout_ms, 10, 60000); }},
        {"redis_version_check_ms", [&](const toml::node& v) { int_key(v, "bayes.redis_version_check_ms", b.redis_version_check_ms, 0, 60000); }},
        {"min_ham", [&](const toml::node& v) { int_key(v, "bayes.min_ham", b.min_ham, 1, 1000000000); }},
        {"min_spam", [&](const toml::node& v) { int_key(v, "bayes.min_spam", b.min_spam, 1, 1000000000); }},
        {"headers", [&](const toml::node& v) { string_list(v, "bayes.headers", b.headers); }},
        {"ignore_headers", [&](const toml::node& v) { string_list(v, "bayes.ignore_headers", b.ignore_headers); }},
        {"max_text_bytes", [&](const toml::node& v) { int_key(v, "bayes.max_text_bytes", b.max_text_bytes, 1024, 1LL << 26); }},
        {"max_tokens", [&](const toml::node& v) { int_key(v, "bayes.max_tokens", b.max_tokens, 10, 1000000); }},
        {"autolearn", [&](const toml::node& v) { bool_key(v, "bayes.autolearn", b.autolearn); }},
        {"logistic", [&](const toml::node& v) { bool_key(v, "bayes.logistic", b.logistic); }},
        {"guard", [&](const toml::node& v) { bool_key(v, "bayes.guard", b.guard); }},
        {"guard_unless", [&](const toml::node& v) { probability_key(v, "bayes.guard_unless", b.guard_unless, 0.5); }},
        {"agree", [&](const toml::node& v) {
           probability_key(v, "bayes.agree", b.agree, 0.0);
           if (b.agree > 0.0 && b.agree < 0.95) error(v, "'bayes.agree' must be 0 (off) or from 0.95 to 1");
         }},
        {"autolearn_ham_below", [&](const toml::node& v) { number_key(v, "bayes.autolearn_ham_below", b.autolearn_ham_below); }},
        {"autolearn_spam_above", [&](const toml::node& v) { number_key(v, "bayes.autolearn_spam_above", b.autolearn_spam_above); }},
    };
    walk(*t, keys, "bayes.");
    if (b.store == "redis" && b.redis.empty()) error(n, "'bayes.redis' (HOST:PORT or unix:PATH) is required with store = \"redis\"");
  }

  void rate_limits(const toml::node& n, const std::string& key, RateLimits& l) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'" + key + "' must be a table like { messages_per_hour = 300 }");
    std::map<std::string, std::function<void(const toml::node&)>> keys;
    for (int i = 0; i < RateLimits::kCount; ++i) {
      std::string name = RateLimits::name(i);
      keys[name] = [&, i, name](const toml::node& v) { int_key(v, key + "." + name, l.v[i], 0, 1000000000); };
    }
    walk(*t, keys, key + ".");
  }

  static bool valid_port(const std::string& p) {
    return !p.empty() && p.size() <= 5 && p.find_first_not_of("0123456789") == std::string::npos &&
           std::stol(p) >= 1 && std::stol(p) <= 65535;
  }

  // "IP", "IP:PORT", "[IPv6]:PORT" or "IPv6".
  static bool valid_nameserver(const std::string& s) {
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1 || inet_pton(AF_INET6, s.c_str(), &v6) == 1) return true;
    const std::size_t colon = s.rfind(':');
    if (colon == std::string::npos || !valid_port(s.substr(colon + 1))) return false;
    std::string host = s.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) == 1;
    return inet_pton(AF_INET, host.c_str(), &v4) == 1;
  }

  // "HOST:PORT" civetweb can listen on: one address (civetweb reads
  // "a:1,b:2" as two listeners), a port 1..65535. 1 if loopback, 0 if
  // not, -1 if it is no such address.
  static int listen_address(const std::string& listen) {
    std::size_t colon = listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
    in_addr v4{};
    in6_addr v6{};
    const bool is_v4 = inet_pton(AF_INET, host.c_str(), &v4) == 1;
    const bool is_v6 = host.size() > 2 && host.front() == '[' && host.back() == ']' &&
                       inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) == 1;
    long port_no = port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos
                       ? 0 : std::stol(port);
    if ((!is_v4 && !is_v6 && host != "localhost") || port_no < 1 || port_no > 65535) return -1;
    return (is_v4 && (ntohl(v4.s_addr) >> 24) == 127) || host == "[::1]" || host == "localhost" ? 1 : 0;
  }

  void console(const toml::node& n, ConsoleConfig& c) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'console' must be a table");
    const toml::node* listen_node = nullptr;
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"listen", [&](const toml::node& v) {
           string_key(v, "console.listen", c.listen, 100, false);
           listen_node = &v;
         }},
        {"users_file", [&](const toml::node& v) { string_key(v, "console.users_file", c.users_file, 4096, true); }},
        {"certificate", [&](const toml::node& v) { string_key(v, "console.certificate", c.certificate, 4096, true); }},
        {"audit_log", [&](const toml::node& v) { string_key(v, "console.audit_log", c.audit_log, 4096, true); }},
        {"session_minutes", [&](const toml::node& v) { int_key(v, "console.session_minutes", c.session_minutes, 1, 24 * 60); }},
    };
    walk(*t, keys, "console.");
    // Passwords and session cookies cross the network in clear without TLS.
    const int where = listen_node != nullptr ? listen_address(c.listen) : 1;
    if (where < 0) error(*listen_node, "'console.listen' must be one address and port, e.g. \"127.0.0.1:9796\"");
    if (where == 0 && c.certificate.empty())
      error(*listen_node, "'console.listen' is not a loopback address: set console.certificate (HTTPS) to listen on it");
  }

  void metrics(const toml::node& n, MetricsConfig& m) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'metrics' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"listen", [&](const toml::node& v) {
           string_key(v, "metrics.listen", m.listen, 100, true);
           if (m.listen.empty()) return;
           if (listen_address(m.listen) != 1)
             error(v, "'metrics.listen' must be a loopback address and port, e.g. \"127.0.0.1:9795\" (or \"\" for off)");
         }},
    };
    walk(*t, keys, "metrics.");
  }

  void memory(const toml::node& n, MemoryConfig& m) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'memory' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"log_seconds", [&](const toml::node& v) { int_key(v, "memory.log_seconds", m.log_seconds, 0, 86400); }},
        {"warn_mb", [&](const toml::node& v) {
           std::int64_t mb = 0;
           int_key(v, "memory.warn_mb", mb, 16, 1 << 20);
           if (mb > 0) m.warn_bytes = static_cast<std::size_t>(mb) << 20;
         }},
    };
    walk(*t, keys, "memory.");
  }

  void history(const toml::node& n, HistoryConfig& h) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'history' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"enabled", [&](const toml::node& v) { bool_key(v, "history.enabled", h.enabled); }},
        {"path", [&](const toml::node& v) { string_key(v, "history.path", h.path, 4096, true); }},
        {"retention_days", [&](const toml::node& v) { int_key(v, "history.retention_days", h.retention_days, 1, 3650); }},
        {"max_mb", [&](const toml::node& v) {
           std::int64_t mb = 0;
           int_key(v, "history.max_mb", mb, 16, 1 << 20);
           if (mb > 0) h.max_bytes = static_cast<std::size_t>(mb) << 20;
         }},
        {"queue", [&](const toml::node& v) { int_key(v, "history.queue", h.queue, 1, 1000000); }},
        {"reference", [&](const toml::node& v) {
           std::string r;
           string_key(v, "history.reference", r, 10, false);
           if (r == "url" || r == "line" || r == "off") h.reference = r;
           else if (!r.empty()) error(v, "'history.reference' must be one of url, line, off");
         }},
        {"store", [&](const toml::node& v) {
           string_key(v, "history.store", h.store, 10, false);
           if (h.store != "lmdb" && h.store != "redis") error(v, "'history.store' must be \"lmdb\" or \"redis\"");
         }},
        {"redis", [&](const toml::node& v) { string_key(v, "history.redis", h.redis, 300, true); }},
        {"redis_prefix", [&](const toml::node& v) { string_key(v, "history.redis_prefix", h.redis_prefix, 100, false); }},
        {"redis_timeout_ms", [&](const toml::node& v) { int_key(v, "history.redis_timeout_ms", h.redis_timeout_ms, 10, 60000); }},
    };
    walk(*t, keys, "history.");
  }

  void outbound(const toml::node& n, OutboundConfig& o) {
    const toml::table* t = n.as_table();
    if (t == nullptr) return error(n, "'outbound' must be a table");
    const std::map<std::string, std::function<void(const toml::node&)>> keys = {
        {"enabled", [&](const toml::node& v) { bool_key(v, "outbound.enabled", o.enabled); }},
        {"threshold", [&](const toml::node& v) {
           double d = 0;
           number_key(v, "outbound.threshold", d);
           if (std::fabs(d * 10 - std::round(d * 10)) > 1e-6 || std::fabs(d) > 1e6)
             return error(v, "'outbound.threshold' must be a number with at most one decimal, e.g. 5 or 7.5");
           o.threshold_tenths = std::llround(d * 10);
         }},
        {"user_limits", [&](const toml::node& v) { rate_limits(v, "outbound.user_limits", o.user_limits); }},
        {"domain_limits", [&](const toml::node& v) { rate_limits(v, "outbound.domain_limits", o.domain_limits); }},
        {"overrides_file", [&](const toml::node& v) { string_key(v, "outbound.overrides_file", o.overrides_file, 4096, true); }},
        {"hold_after_spam", [&](const toml::node& v) { int_key(v, "outbound.hold_after_spam", o.hold_after_spam, 0, 1000000); }},
        {"spam_window", [&](const toml::node& v) { int_key(v, "outbound.spam_window", o.spam_window_seconds, 60, 30 * 86400); }},
        {"hold_seconds", [&](const toml::node& v) { int_key(v, "outbound.hold_seconds", o.hold_seconds, 0, 365 * 86400); }},
        {"hold_action", [&](const toml::node& v) {
           std::string a;
           string_key(v, "outbound.hold_action", a, 20, false);
           if (a == "tempfail") o.hold_quarantine = false;
           else if (a == "quarantine") o.hold_quarantine = true;
           else error(v, "'outbound.hold_action' must be \"tempfail\" (451 4.7.1) or \"quarantine\" (Postfix's hold queue)");
         }},
        {"tag_header", [&](const toml::node& v) {
           string_key(v, "outbound.tag_header", o.tag_header, 60, false);
           if (o.tag_header.find_first_of(" :") != std::string::npos) error(v, "'outbound.tag_header' must be a header name");
         }},
        {"site_key_file", [&](const toml::node& v) { string_key(v, "outbound.site_key_file", o.site_key_file, 4096, false); }},
        {"message_id_days", [&](const toml::node& v) { int_key(v, "outbound.message_id_days", o.message_id_days, 1, 3650); }},
        {"store", [&](const toml::node& v) {
           string_key(v, "outbound.store", o.store, 16, false);
           if (o.store != "lmdb" && o.store != "redis") error(v, "'outbound.store' must be \"lmdb\" or \"redis\"");
         }},
        {"redis", [&](const toml::node& v) { string_key(v, "outbound.redis", o.redis, 4096, false); }},
        {"sender_domains", [&](const toml::node& v) {
           const toml::table* st = v.as_table();
           if (st == nullptr) return error(v, "'outbound.sender_domains' must be a table like { \"alice@example.com\" = [\"example.com\"] }");
           for (const auto& [k, list] : *st) {
             std::vector<std::string> doms;
             string_list(list, "outbound.sender_domains." + std::string(k.str()), doms);
             for (std::string& d : doms) d = ascii_lower(d);
             o.sender_domains[ascii_lower(k.str())] = std::move(doms);
           }
         }},
    };
    walk(*t, keys, "outbound.");
  }

  static bool symbol_name(const std::string& s) {
    if (s.empty() || s.size() > 100 || !(std::isupper(static_cast<unsigned char>(s[0])))) return false;
    for (char ch : s) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
    }
    return true;
  }

  void dnsbl(const toml::node& n, std::vector<DnsblZone>& out, const std::string& key) {
    const toml::array* a = n.as_array();
    if (a == nullptr) return error(n, "'" + key + "' must be an array of tables: [[" + key + "]] zone = ... symbol = ...");
    for (const toml::node& e : *a) {
      const toml::table* t = e.as_table();
      if (t == nullptr) {
        error(e, "each [[" + key + "]] entry must be a table");
        continue;
      }
      DnsblZone z;
      const std::map<std::string, std::function<void(const toml::node&)>> keys = {
          {"zone", [&](const toml::node& v) { string_key(v, key + ".zone", z.zone, 200, false); }},
          {"symbol", [&](const toml::node& v) {
             string_key(v, key + ".symbol", z.symbol, 100, false);
             if (!z.symbol.empty() && !symbol_name(z.symbol)) error(v, "'" + key + ".symbol' must be like RCVD_IN_EXAMPLE");
           }},
          {"score", [&](const toml::node& v) {
             if (!v.is_number()) return error(v, "'" + key + ".score' must be a number");
             z.score = v.is_integer() ? static_cast<double>(*v.value<std::int64_t>()) : *v.value<double>();
           }},
          {"codes", [&](const toml::node& v) {
             const toml::table* ct = v.as_table();
             if (ct == nullptr) return error(v, "'" + key + ".codes' must be a table like { \"127.0.0.2\" = \"RCVD_IN_X_SBL\" }");
             for (const auto& [k, sym] : *ct) {
               auto s = sym.value<std::string>();
               if (!s || !symbol_name(*s)) {
                 error(sym, "'" + key + ".codes' values must be symbol names like RCVD_IN_X_SBL");
                 continue;
               }
               z.codes[std::string(k.str())] = *s;
             }
           }},
      };
      walk(*t, keys, key + ".");
      if (z.zone.empty() || z.symbol.empty()) {
        error(e, "each [[" + key + "]] entry needs zone and symbol");
        continue;
      }
      out.push_back(std::move(z));
    }
  }

  std::string path_;
  std::vector<Diagnostic>& diags_;
};

// The parsed TOML of `path` checked and turned into a Config.
Result<Config> config_from(const toml::table& root, const std::string& path, std::vector<Diagnostic>& diags,
                           std::size_t before) {
  Config c;
  c.path = path;
  Loader loader(path, diags);
  loader.load(root, c);
  std::stable_sort(diags.begin() + static_cast<std::ptrdiff_t>(before), diags.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
  if (c.rules_dirs.empty()) diags.push_back({path, 0, "'rules_dir' (or the list 'rules_dirs') is required"});
  OutboundConfig& ob = c.outbound;
  if (c.history.store == "redis" && c.history.redis.empty()) c.history.redis = c.bayes.redis;
  if (c.history.store == "redis" && c.history.redis.empty())
    diags.push_back({path, 0, "'history.redis' (HOST:PORT or unix:PATH) is required with store = \"redis\""});
  if (ob.store == "redis" && ob.redis.empty()) ob.redis = c.bayes.redis;
  if (ob.store == "redis" && ob.redis.empty())
    diags.push_back({path, 0, "'outbound.redis' (HOST:PORT or unix:PATH) is required with store = \"redis\""});
  if (diags.size() != before) return Status::InvalidArgument("config " + path + " has errors");
  for (std::string& d : c.rules_dirs) d = loader.resolve(d);
  for (std::string& d : c.rules_canary_dirs) d = loader.resolve(d);
  if (!c.rules_cache_dir.empty()) c.rules_cache_dir = loader.resolve(c.rules_cache_dir);
  c.local_rules = loader.resolve(c.local_rules);
  c.recipient_settings = loader.resolve(c.recipient_settings);
  ClamavConfig& av = c.clamav;
  av.own_signatures = loader.resolve(av.own_signatures);
  for (std::string& d : av.signature_dirs) d = loader.resolve(d);
  for (std::string& d : av.canary_dirs) d = loader.resolve(d);
  av.policy_file = loader.resolve(av.policy_file);
  av.spool_dir = loader.resolve(av.spool_dir);
  av.temp_dir = av.temp_dir.empty() ? av.spool_dir : loader.resolve(av.temp_dir);
  if (c.bayes.path.empty()) c.bayes.path = "/var/lib/spamgate/bayes";
  c.bayes.path = loader.resolve(c.bayes.path);
  c.history.path = c.history.path.empty() ? (fs::path(c.bayes.path).parent_path() / "history").string()
                                           : loader.resolve(c.history.path);
  if (!c.console.users_file.empty()) c.console.users_file = loader.resolve(c.console.users_file);
  if (!c.console.certificate.empty()) c.console.certificate = loader.resolve(c.console.certificate);
  c.console.audit_log = c.console.audit_log.empty()
                            ? (fs::path(c.bayes.path).parent_path() / "console-audit.log").string()
                            : loader.resolve(c.console.audit_log);
  ob.overrides_file = loader.resolve(ob.overrides_file);
  ob.site_key_file = ob.site_key_file.empty() ? (fs::path(c.bayes.path).parent_path() / "site.key").string()
                                              : loader.resolve(ob.site_key_file);
  // A malware scan that failed must not let the message through unscanned.
  c.milter.on_check_error_by_check.emplace("clamav", FailureAction::kTempfail);
  if (c.log_target != "stderr" && c.log_target != "stdout" && c.log_target != "syslog" &&
      c.log_target != "journal")
    c.log_target = loader.resolve(c.log_target);
  if (c.hostname.empty()) c.hostname = local_fqdn();
  if (c.auth.authserv_id.empty()) c.auth.authserv_id = c.hostname;
  return c;
}

}  // namespace

namespace {

// `parse()` (toml++, which throws on bad TOML) turned into a Config; a parse
// error names path:line.
template <class Parse>
Result<Config> parse_and_load(const std::string& path, std::vector<Diagnostic>& diags, Parse parse) {
  std::size_t before = diags.size();
  toml::table root;
  try {
    root = parse();
  } catch (const toml::parse_error& e) {
    diags.push_back({path, static_cast<int>(e.source().begin.line), std::string(e.description())});
    return Status::InvalidArgument("config " + path + " is not valid TOML");
  } catch (const std::exception& e) {
    diags.push_back({path, 0, std::string("cannot read config: ") + e.what()});
    return Status::IOError("config " + path + " unreadable");
  }
  return config_from(root, path, diags, before);
}

}  // namespace

Result<Config> load_config(const std::string& path, std::vector<Diagnostic>& diags) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    diags.push_back({path, 0, "cannot read config: no such file"});
    return Status::NotFound("config " + path + " not found");
  }
  return parse_and_load(path, diags, [&] { return toml::parse_file(path); });
}

Result<Config> parse_config(std::string_view text, const std::string& path, std::vector<Diagnostic>& diags) {
  return parse_and_load(path, diags, [&] { return toml::parse(text, path); });
}

}  // namespace spamgate
