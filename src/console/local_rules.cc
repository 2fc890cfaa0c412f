// local_rules.cc - proposals, lint and save of the local rules file (see
// local_rules.h).
#include "console/local_rules.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/load.h"
#include "message/addresses.h"
#include "rules/ruleset.h"
#include "spamgate/recipients.h"
#include "util/fd.h"

namespace spamgate::console {

namespace fs = std::filesystem;

namespace {


std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The sender's address: the From field's, else the envelope sender; "" when
// neither is a plain address a rules line can carry.
std::string sender_of(const HistoryRecord& r) {
  for (const std::string& field : {r.from, r.mail_from}) {
    for (const std::string& a : header_addresses(field)) {
      std::string addr = lower(a);
      std::size_t at = addr.rfind('@');
      if (at == std::string::npos || at == 0 || at + 1 >= addr.size() || addr.size() > 254) continue;
      // A glob character or a bare name in a hostile From would make the
      // proposed line match far more than this sender ("x@*" -> "*@*").
      if (addr.find_first_of(" \t\r\n#\\\"*?[]") != std::string::npos) continue;
      const std::string domain = addr.substr(at + 1);
      if (domain.find('.') == std::string::npos || domain.front() == '.' || domain.back() == '.' ||
          domain.find("..") != std::string::npos ||
          domain.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)
        continue;
      return addr;
    }
  }
  return {};
}

std::string tenths(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

std::vector<Proposal> false_positive_proposals(const HistoryRecord& r, const SymbolTable& symbols,
                                               const std::string& user, bool with_settings) {
  char date[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
  std::string about = !r.ref.empty() ? r.ref : r.message_id;
  for (char& ch : about)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';  // one comment line, whatever the message
  if (about.size() > 100) about.resize(100);
  const std::string head = "# false positive" + (about.empty() ? std::string() : " " + about) + " (" + user + ", " +
                           date + ")\n";
  std::vector<Proposal> out;
  if (std::string addr = sender_of(r); !addr.empty()) {
    const std::string domain = addr.substr(addr.rfind('@') + 1);
    // For this customer only: the recipients' domains, as the settings file
    // names them (recipient_key: the MTA's forms of one mailbox).
    std::vector<std::string> theirs;
    for (const std::string& rcpt : with_settings ? r.rcpt_to : std::vector<std::string>{}) {
      const std::string key = recipient_key(rcpt);
      const std::size_t at = key.rfind('@');
      if (at == std::string::npos) continue;
      const std::string d = key.substr(at + 1);
      if (d.find('.') == std::string::npos || d.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)
        continue;  // not a name the settings file takes
      if (std::find(theirs.begin(), theirs.end(), d) == theirs.end()) theirs.push_back(d);
    }
    if (!theirs.empty() && theirs.size() <= 5) {
      std::string lines = head, names;
      for (const std::string& d : theirs) {
        lines += d + " welcomelist_auth *@" + domain + "\n";
        names += (names.empty() ? "" : ", ") + d;
      }
      out.push_back({kRecipientsProposal, "Welcome mail from *@" + domain + " for " + names +
                                              " only, when SPF, DKIM or DMARC authenticates it (recipient settings)",
                     lines, true});
    }
    out.push_back({"welcomelist-domain", "Welcome mail from *@" + domain + " when SPF, DKIM or DMARC authenticates it",
                   head + "welcomelist_auth *@" + domain + "\n"});
    out.push_back({"welcomelist-address", "Welcome mail from " + addr + " when SPF, DKIM or DMARC authenticates it",
                   head + "welcomelist_auth " + addr + "\n"});
  }
  // The heaviest rule that a local `score` line can change, lowered by what
  // the message is over the threshold (and 0.1 more), not below 0.
  const double score = std::strtod(r.score.c_str(), nullptr), threshold = std::strtod(r.threshold.c_str(), nullptr);
  const HistoryRecord::RuleHit* top = nullptr;
  double top_score = 0;
  for (const HistoryRecord::RuleHit& h : r.hits) {
    const double s = std::strtod(h.score.c_str(), nullptr);
    if (s > top_score && symbols.find(h.name) != nullptr) {
      top = &h;
      top_score = s;
    }
  }
  if (top != nullptr && score > threshold) {
    const double now_score = static_cast<double>(symbols.score_millis(top->name)) / 1000.0;
    const double lowered = std::max(0.0, std::floor((now_score - (score - threshold) - 0.1) * 10) / 10);
    const SymbolInfo* info = symbols.find(top->name);
    std::string was = "was " + tenths(now_score);
    if (!info->score_file.empty()) was += " at " + info->score_file + ":" + std::to_string(info->score_line);
    out.push_back({"score", "Lower " + top->name + " from " + tenths(now_score) + " to " + tenths(lowered) +
                                " (for every message)",
                   head + "score " + top->name + " " + tenths(lowered) + "  # " + was + "\n"});
  }
  return out;
}

Status read_local_rules(const std::string& path, std::string& out) {
  out.clear();
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  auto size = fs::file_size(path, ec);
  if (ec) return Status::IOError("cannot read " + path + ": " + ec.message());
  if (size > kMaxLocalRulesBytes) return Status::Limit(path + " is larger than 1 MB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return Status::Ok();
}

namespace {

// Writes `content` to a new temporary file beside `path`; its name in `tmp`.
Status write_beside(const std::string& path, const std::string& content, const char* what, std::string& tmp) {
  fs::path p(path);
  std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  std::string templ = dir + "/." + p.filename().string() + "." + what + "-XXXXXX";
  UniqueFd file{::mkstemp(templ.data())};
  if (file.fd < 0) return Status::IOError("cannot write in " + dir + ": " + std::strerror(errno));
  tmp = templ;
  ::fchmod(file.fd, 0644);
  const char* q = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(file.fd, q, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
    q += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(file.fd) != 0) return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

Status lint_recipient_settings(const Config& config, const std::string& content, LintResult& out) {
  out = {};
  if (content.size() > kMaxLocalRulesBytes) return Status::Limit("the settings file is larger than 1 MB");
  if (config.recipient_settings.empty()) return Status::InvalidArgument("the config names no recipient_settings file");
  RecipientTable::parse(content, config.recipient_settings, config, out.errors, out.warnings);
  return Status::Ok();
}

Status lint_local_rules(const Config& config, const std::string& content, LintResult& out) {
  out = {};
  if (content.size() > kMaxLocalRulesBytes) return Status::Limit("the local rules are larger than 1 MB");
  const std::string& local = config.local_rules;
  if (local.empty()) return Status::InvalidArgument("the config names no local_rules file");
  std::string tmp;
  Status st = write_beside(local, content, "lint", tmp);
  if (!st.ok()) {
    if (!tmp.empty()) ::unlink(tmp.c_str());
    return st;
  }
  std::vector<Diagnostic> diags;
  std::shared_ptr<RuleSet> rules;
  try {
    rules = parse_config_rules(config, tmp, diags);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  ::unlink(tmp.c_str());
  auto rename = [&](Diagnostic d) {
    if (d.file == tmp) d.file = local;
    std::string::size_type at;
    while ((at = d.message.find(tmp)) != std::string::npos) d.message.replace(at, tmp.size(), local);
    return d;
  };
  for (Diagnostic& d : diags) out.errors.push_back(rename(std::move(d)));
  for (const Diagnostic& d : rules->warnings)
    if (d.file == tmp) out.warnings.push_back(rename(d));
  return Status::Ok();
}

Status save_local_rules(const std::string& path_in, const std::string& content) {
  if (content.size() > kMaxLocalRulesBytes) return Status::Limit("the local rules are larger than 1 MB");
  // A symbolic link stays one: the file it points to is replaced.
  // A file not there yet is made (a settings file configured, never written).
  std::error_code ec;
  const bool link = fs::symlink_status(path_in, ec).type() == fs::file_type::symlink;
  ec.clear();
  const std::string path = link ? fs::canonical(path_in, ec).string() : path_in;
  if (ec) return Status::IOError("cannot resolve " + path_in + ": " + ec.message());
  std::string tmp;
  Status st = write_beside(path, content, "new", tmp);
  // The new file keeps the old one's mode and owner (the owner only when
  // we may: root).
  struct stat old {};
  if (st.ok() && ::stat(path.c_str(), &old) == 0) {
    ::chmod(tmp.c_str(), old.st_mode & 07777);
    if (::geteuid() == 0) (void)!::chown(tmp.c_str(), old.st_uid, old.st_gid);
  }
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::IOError("cannot replace " + path + ": " + std::strerror(errno));
  if (!st.ok() && !tmp.empty()) ::unlink(tmp.c_str());
  if (st.ok()) {  // the rename itself survives a crash once the directory is synced
    const std::string dir = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
    UniqueFd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (d.fd >= 0) ::fsync(d.fd);
  }
  return st;
}

}  // namespace spamgate::console
