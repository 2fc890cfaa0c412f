// sa_compat.cc - SpamAssassin's configuration language around the rules
// (see sa_compat.h).
#include "rules/sa_compat.h"

#include <cctype>
#include <cstring>
#include <unordered_map>

#include "rules/meta.h"

namespace spamgate {
namespace {

constexpr std::string_view kPluginPrefix = "Mail::SpamAssassin::Plugin::";

// The plugins whose directives the parser implements and whose eval tests
// carry our rules: their `ifplugin` blocks load. Every other plugin (network
// lookups we do with our own checks, Razor, Pyzor, DCC, TextCat...) counts
// as not loaded, as in a SpamAssassin without it.
const char* const kLoaded[] = {"Check",     "ReplaceTags", "MIMEHeader", "HeaderEval", "BodyEval",
                               "MIMEEval",  "HTMLEval",    "WLBLEval",   "FreeMail",   "RelayEval",
                               "URIEval",   "SPF",         "DKIM",       "DMARC",      "Bayes"};

// `can(Mail::SpamAssassin::Conf::X)`: what SpamAssassin 4.0.1 answers.
const char* const kConfFeatures[] = {"feature_bayes_stopwords",   "feature_bug6558_free",
                                     "feature_capture_rules",     "feature_dns_block_rule",
                                     "feature_dns_local_ports_permit_avoid", "feature_originating_ip_headers",
                                     "feature_registryboundaries", "feature_welcomelist_blocklist",
                                     "feature_yesno_takes_args",   "perl_min_version_5010000"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// can(Module::method): a Conf feature, or a method of a plugin we load.
bool sa_can(std::string_view method) {
  constexpr std::string_view kConf = "Mail::SpamAssassin::Conf::";
  if (method.substr(0, kConf.size()) == kConf) {
    std::string_view f = method.substr(kConf.size());
    for (const char* k : kConfFeatures)
      if (f == k) return true;
    return false;
  }
  std::size_t sep = method.rfind("::");
  if (sep == std::string_view::npos) return false;
  return sa_plugin_loaded(method.substr(0, sep));
}

}  // namespace

bool sa_plugin_loaded(std::string_view plugin) {
  plugin = trim(plugin);
  if (plugin.substr(0, kPluginPrefix.size()) == kPluginPrefix) plugin.remove_prefix(kPluginPrefix.size());
  if (plugin == "Dmarc") plugin = "DMARC";  // renamed in 4.0; SpamAssassin maps the old name too
  for (const char* p : kLoaded)
    if (plugin == p) return true;
  return false;
}

Result<bool> sa_condition(std::string_view expr) {
  // plugin(X), can(X), has(X), version, perl_version and local_tests_only
  // become numbers; what is left is arithmetic our meta parser evaluates.
  std::string out;
  std::size_t i = 0;
  while (i < expr.size()) {
    char c = expr[i];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[j])) || expr[j] == '_')) ++j;
      std::string_view word = expr.substr(i, j - i);
      if (word == "plugin" || word == "can" || word == "has") {
        std::size_t k = j;
        while (k < expr.size() && std::isspace(static_cast<unsigned char>(expr[k]))) ++k;
        std::size_t close = k < expr.size() && expr[k] == '(' ? expr.find(')', k) : std::string_view::npos;
        if (close == std::string_view::npos)
          return Status::InvalidArgument("'" + std::string(word) + "' needs an argument in parentheses");
        std::string_view arg = trim(expr.substr(k + 1, close - k - 1));
        bool v = word == "plugin" ? sa_plugin_loaded(arg) : sa_can(arg);
        out += v ? " 1 " : " 0 ";
        i = close + 1;
        continue;
      }
      if (word == "version") out += std::string(" ") + std::string(kSaVersion) + " ";
      else if (word == "perl_version") out += " 5.036000 ";
      else if (word == "local_tests_only") out += " 0 ";
      else return Status::InvalidArgument("unknown word '" + std::string(word) + "' in condition");
      i = j;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  auto m = parse_meta(out);
  if (!m.ok()) return Status::InvalidArgument("cannot read condition: " + m.status().message());
  return m.value()->eval([](const std::string&) { return 0.0; }) != 0;
}

SaDirective sa_directive(std::string_view k) {
  using K = SaDirective::Kind;
  struct Row {
    const char* name;
    K kind;
    const char* reason;
  };
  // Directives that define no rule. kUse rows are read by the parser.
  static const Row kRows[] = {
      {"replace_tag", K::kUse, ""}, {"replace_pre", K::kUse, ""}, {"replace_inter", K::kUse, ""},
      {"replace_post", K::kUse, ""}, {"replace_start", K::kUse, ""}, {"replace_end", K::kUse, ""},
      {"replace_rules", K::kUse, ""}, {"require_version", K::kUse, ""},
      {"priority", K::kSkip, "rule order: every rule runs, metas after the rules they read"},
      {"reuse", K::kSkip, "mass-check only"},
      {"test", K::kSkip, "SpamAssassin's self-test lines"},
      {"report", K::kSkip, "report template: spamgate writes its own headers"},
      {"unsafe_report", K::kSkip, "report template: spamgate writes its own headers"},
      {"clear_report_template", K::kSkip, "report template: spamgate writes its own headers"},
      {"clear_unsafe_report_template", K::kSkip, "report template: spamgate writes its own headers"},
      {"report_safe", K::kSkip, "spamgate never rewrites the body"},
      {"report_contact", K::kSkip, "the support_url key says it"},
      {"add_header", K::kSkip, "spamgate writes its own headers"},
      {"clear_headers", K::kSkip, "spamgate writes its own headers"},
      {"required_score", K::kSkip, "the threshold key of spamgate.toml sets it"},
      {"ok_locales", K::kSkip, "TextCat/locale tests are not implemented"},
      {"ok_languages", K::kSkip, "TextCat/locale tests are not implemented"},
      {"bayes_ignore_header", K::kSkip, "spamgate's Bayes has its own tokenizer"},
      {"bayes_auto_learn", K::kSkip, "the [bayes] section sets autolearn"},
      {"bayes_auto_learn_threshold_spam", K::kSkip, "the [bayes] section sets autolearn"},
      {"bayes_auto_learn_threshold_nonspam", K::kSkip, "the [bayes] section sets autolearn"},
      {"def_welcomelist_auth", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"def_whitelist_auth", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"welcomelist_auth", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"whitelist_auth", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"def_welcomelist_from_dkim", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"def_whitelist_from_dkim", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"def_welcomelist_from_spf", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"def_whitelist_from_spf", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"welcomelist_from_rcvd", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"whitelist_from_rcvd", K::kSkip, "authenticated welcomelists are not implemented yet"},
      {"adsp_override", K::kSkip, "ADSP is historic (RFC 8553)"},
      {"freemail_domains", K::kUse, ""},
      {"util_rb_tld", K::kSkip, "spamgate finds registrable domains with its own list"},
      {"util_rb_2tld", K::kSkip, "spamgate finds registrable domains with its own list"},
      {"util_rb_3tld", K::kSkip, "spamgate finds registrable domains with its own list"},
      {"clear_util_rb", K::kSkip, "spamgate finds registrable domains with its own list"},
      {"enlist_uri_host", K::kSkip, "URI host lists are not implemented yet"},
      {"enlist_addrlist", K::kSkip, "address lists are not implemented yet"},
      {"url_shortener", K::kSkip, "short URLs are never followed (no network from a scan)"},
      {"url_shortener_get", K::kSkip, "short URLs are never followed (no network from a scan)"},
      {"redirector_pattern", K::kUse, ""},
      {"uridnsbl_skip_domain", K::kSkip, "URI blocklists are the [[uribl]] zones of spamgate.toml"},
      {"urirhssub", K::kSkip, "URI blocklists are the [[uribl]] zones of spamgate.toml"},
      {"uridnssub", K::kSkip, "URI blocklists are the [[uribl]] zones of spamgate.toml"},
      {"uridnsbl", K::kSkip, "URI blocklists are the [[uribl]] zones of spamgate.toml"},
      {"urirhsbl", K::kSkip, "URI blocklists are the [[uribl]] zones of spamgate.toml"},
      {"askdns", K::kSkip, "DNS lookups are the [[dnsbl]] zones of spamgate.toml"},
      {"dns_block_rule", K::kSkip, "DNS lookups are the [[dnsbl]] zones of spamgate.toml"},
      {"dns_local_ports_avoid", K::kSkip, "the [dns] section sets the resolver"},
      {"originating_ip_headers", K::kUse, ""},
      {"clear_originating_ip_headers", K::kUse, ""},
      {"fns_ignore_headers", K::kSkip, "the FromNameSpoof plugin is not implemented"},
      {"fns_ignore_dkim", K::kSkip, "the FromNameSpoof plugin is not implemented"},
      {"fns_check", K::kSkip, "the FromNameSpoof plugin is not implemented"},
      {"asn_lookup", K::kSkip, "ASN lookups need the network"},
      {"loadplugin", K::kSkip, "plugins are built in (see sa_plugin_loaded)"},
      {"tryplugin", K::kSkip, "plugins are built in (see sa_plugin_loaded)"},
  };
  static const std::unordered_map<std::string_view, const Row*> kIndex = [] {
    std::unordered_map<std::string_view, const Row*> m;
    for (const Row& r : kRows) m.emplace(r.name, &r);
    return m;
  }();
  if (k.substr(0, 14) == "bayes_stopword") return {K::kSkip, "spamgate's Bayes has its own tokenizer"};
  auto it = kIndex.find(k);
  if (it == kIndex.end()) return {};
  return {it->second->kind, it->second->reason};
}

Status ReplaceTags::add(std::string_view keyword, std::string_view value) {
  value = trim(value);
  if (keyword == "replace_rules") {
    std::size_t i = 0;
    while (i < value.size()) {
      while (i < value.size() && std::isspace(static_cast<unsigned char>(value[i]))) ++i;
      std::size_t j = i;
      while (j < value.size() && !std::isspace(static_cast<unsigned char>(value[j]))) ++j;
      if (j > i) rules_.emplace(value.substr(i, j - i));
      i = j;
    }
    if (rules_.empty()) return Status::InvalidArgument("replace_rules needs rule names");
    return Status::Ok();
  }
  if (keyword == "replace_start" || keyword == "replace_end") {
    if (value.empty()) return Status::InvalidArgument(std::string(keyword) + " needs a value");
    (keyword == "replace_start" ? start_ : end_) = std::string(value);
    return Status::Ok();
  }
  std::size_t sp = 0;
  while (sp < value.size() && !std::isspace(static_cast<unsigned char>(value[sp]))) ++sp;
  std::string name(value.substr(0, sp));
  std::string re(trim(value.substr(sp)));
  if (name.empty() || re.empty()) return Status::InvalidArgument(std::string(keyword) + " needs a name and a regex");
  auto& table = keyword == "replace_tag" ? tag_ : keyword == "replace_pre" ? pre_ : keyword == "replace_inter" ? inter_ : post_;
  table[name] = re;
  return Status::Ok();
}

std::string ReplaceTags::apply(std::string_view pattern) const {
  std::string re(pattern);
  // "<pre NAME>" / "<post NAME>" / "<inter NAME>": the first of each picks
  // that pass's affix and is removed.
  auto take = [&](const char* kind, std::string& name) {
    std::string open = start_ + kind + " ";
    std::size_t b = re.find(open);
    if (b == std::string::npos) return;
    std::size_t e = re.find(end_, b + open.size());
    if (e == std::string::npos || e == b + open.size()) return;
    name = re.substr(b + open.size(), e - b - open.size());
    re.erase(b, e + end_.size() - b);
  };
  for (int pass = 0; pass <= 5; ++pass) {
    std::string pre_name, post_name, inter_name;
    take("pre", pre_name);
    take("post", post_name);
    take("inter", inter_name);
    // split(/(<[^<>]+>)/): text and tag pieces alternate; Perl drops empty
    // trailing pieces.
    std::vector<std::string> pieces;
    std::string text;
    std::size_t i = 0;
    while (i < re.size()) {
      if (re[i] == '<') {
        std::size_t e = i + 1;
        while (e < re.size() && re[e] != '<' && re[e] != '>') ++e;
        if (e < re.size() && re[e] == '>' && e > i + 1) {
          pieces.push_back(text);
          text.clear();
          pieces.push_back(re.substr(i, e + 1 - i));
          i = e + 1;
          continue;
        }
      }
      text.push_back(re[i++]);
    }
    pieces.push_back(text);
    while (!pieces.empty() && pieces.back().empty()) pieces.pop_back();
    auto lookup = [](const std::map<std::string, std::string>& t, const std::string& n) -> const std::string* {
      auto it = t.find(n);
      return it == t.end() || it->second.empty() ? nullptr : &it->second;
    };
    const std::string* pre = pre_name.empty() ? nullptr : lookup(pre_, pre_name);
    const std::string* post = post_name.empty() ? nullptr : lookup(post_, post_name);
    const std::string* inter = inter_name.empty() ? nullptr : lookup(inter_, inter_name);
    bool again = false;
    for (std::string& p : pieces) {
      std::size_t b = p.find(start_);
      std::size_t e = b == std::string::npos ? b : p.find(end_, b + start_.size() + 1);
      if (inter != nullptr && p.empty()) p = *inter;
      if (b == std::string::npos || e == std::string::npos) continue;
      std::string tag = p.substr(b + start_.size(), e - b - start_.size());
      if (pre != nullptr) p.insert(b, *pre), b += pre->size(), e += pre->size();
      if (post != nullptr) p.insert(e + end_.size(), *post);
      if (const std::string* rep = lookup(tag_, tag)) {
        p.replace(b, e + end_.size() - b, *rep);
        if (rep->find('<') != std::string::npos && rep->find('>') != std::string::npos) again = true;
      }
    }
    re.clear();
    for (const std::string& p : pieces) re += p;
    if (!again) break;
  }
  return re;
}

}  // namespace spamgate
