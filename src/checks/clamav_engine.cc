// clamav_engine.cc - ClamEngine on libclamav (see clamav_engine.h).
#include "checks/clamav_engine.h"

#include <clamav.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "checks/builtin.h"
#include "util/log.h"
#include "util/text.h"

namespace spamgate {

namespace fs = std::filesystem;

void ClEngineFree::operator()(cl_engine* e) const {
  if (e != nullptr) cl_engine_free(e);
}

const char* sig_action_name(SigAction a) {
  switch (a) {
    case SigAction::kReject: return "reject";
    case SigAction::kScore: return "score";
    case SigAction::kIgnore: return "ignore";
  }
  return "score";
}

namespace {

constexpr std::string_view kUnofficial = ".UNOFFICIAL";
constexpr std::string_view kLimitsPrefix = "Heuristics.Limits.Exceeded";

std::atomic<int> g_live{0};

std::string_view strip_suffix(std::string_view name) {
  if (name.size() > kUnofficial.size() && name.substr(name.size() - kUnofficial.size()) == kUnofficial)
    name.remove_suffix(kUnofficial.size());
  return name;
}

// libclamav's messages: while a database loads or a message is scanned
// they are collected (they name the line of a malformed database, or a scan
// that could not use its temporary directory); otherwise they go to our log.
thread_local std::vector<std::string>* t_capture = nullptr;

void on_message(enum cl_msg severity, const char* fullmsg, const char* msg, void* /*context*/) {
  std::string text(msg != nullptr ? msg : fullmsg != nullptr ? fullmsg : "");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (t_capture != nullptr && severity >= CL_MSG_WARN) {
    if (t_capture->size() < 20) t_capture->push_back(text);
    return;
  }
  if (severity >= CL_MSG_ERROR) log().warn("libclamav: {}", clip(text, 300));
  else log().debug("libclamav: {}", clip(text, 300));
}

// Collects libclamav's messages for one scan on this thread.
class ScanMessages {
 public:
  ScanMessages() { t_capture = &messages_; }
  ~ScanMessages() { t_capture = nullptr; }
  ScanMessages(const ScanMessages&) = delete;
  ScanMessages& operator=(const ScanMessages&) = delete;
  // libclamav reports a scan whose temporary directory it cannot create
  // (full or dead disk) as clean, with only a warning: that is an error
  // here, or malware would pass unscanned. Other messages are logged.
  Status verdict() const {
    for (const std::string& m : messages_) {
      if (m.find("emporary") != std::string::npos || m.find("tmp") != std::string::npos)
        return Status::IOError("libclamav: " + clip(m, 300));
    }
    for (const std::string& m : messages_) log().debug("libclamav: {}", clip(m, 300));
    return Status::Ok();
  }

 private:
  std::vector<std::string> messages_;
};

cl_error_t init_once() {
  static std::once_flag once;
  static cl_error_t rc = CL_SUCCESS;
  std::call_once(once, [] {
    cl_set_clcb_msg(on_message);
    rc = cl_init(CL_INIT_DEFAULT);
  });
  return rc;
}

// Every match of one scan (all-match mode calls this once per signature).
void on_match(int /*fd*/, const char* name, void* context) {
  auto* out = static_cast<std::vector<std::string>*>(context);
  if (out != nullptr && name != nullptr && out->size() < 100) out->emplace_back(name);
}

// The file extensions libclamav loads from a directory (readdb.h CLI_DBEXT);
// .info only describes a CVD's contents and is skipped.
bool is_database(const fs::path& p) {
  static const char* const kExt[] = {".db",  ".hdb", ".hdu", ".fp",  ".mdb", ".mdu", ".hsb", ".hsu", ".sfp",
                                     ".msb", ".msu", ".ndb", ".ndu", ".ldb", ".ldu", ".sdb", ".zmd", ".rmd",
                                     ".pdb", ".gdb", ".wdb", ".cbc", ".ftm", ".cfg", ".cvd", ".cld", ".cud",
                                     ".cdb", ".cat", ".crb", ".idb", ".ioc", ".yar", ".yara", ".pwdb", ".ign",
                                     ".ign2", ".imp"};
  std::string ext = p.extension().string();
  return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
}

// Load order as libclamav's own directory loader: ignore lists first (they
// apply to what loads after them), then the rest by name.
int load_rank(const fs::path& p) {
  std::string ext = p.extension().string();
  if (ext == ".ign" || ext == ".ign2") return 0;
  if (ext == ".cfg") return 1;
  return 2;
}

struct DbFile {
  fs::path path;
  bool own = false;
};

// The database files of `dir` in load order; an unreadable or missing
// directory is an error naming it.
Status list_databases(const std::string& dir, bool own, std::vector<DbFile>& out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound("signature directory " + dir + ": no such directory");
  std::vector<DbFile> files;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && is_database(it->path())) files.push_back({it->path(), own});
  }
  if (ec) return Status::IOError("signature directory " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end(), [](const DbFile& a, const DbFile& b) {
    int ra = load_rank(a.path), rb = load_rank(b.path);
    return ra != rb ? ra < rb : a.path.filename() < b.path.filename();
  });
  out.insert(out.end(), files.begin(), files.end());
  return Status::Ok();
}

std::vector<std::pair<std::string, bool>> dirs_of(const ClamavConfig& c) {
  std::vector<std::pair<std::string, bool>> dirs;
  if (!c.own_signatures.empty()) dirs.emplace_back(c.own_signatures, true);
  for (const std::string& d : c.signature_dirs) dirs.emplace_back(d, false);
  return dirs;
}

}  // namespace

// What the sigload callback needs while one database file loads.
struct LoadContext {
  ClamEngine* engine = nullptr;
  std::uint32_t file = 0;
  bool trusted_file = false;
  bool own = false;
  unsigned ignored = 0;

  static int on_sigload(const char* /*type*/, const char* name, unsigned int custom, void* context) {
    auto* lc = static_cast<LoadContext*>(context);
    if (lc == nullptr || name == nullptr) return 0;
    std::string key(strip_suffix(name));
    auto p = lc->engine->policy_.find(key);
    if (p != lc->engine->policy_.end() && p->second == SigAction::kIgnore) {
      ++lc->ignored;
      return 1;  // not loaded: ClamAV's .ign2 meaning
    }
    // Official signatures (from a signed CVD/CLD) are not recorded: millions
    // of names, all trusted.
    if (custom != 0) lc->engine->unofficial_[key] = {lc->file, lc->trusted_file, lc->own};
    return 0;
  }
};

ClamEngine::ClamEngine() { ++g_live; }
ClamEngine::~ClamEngine() { --g_live; }
int ClamEngine::live() { return g_live.load(); }

std::string ClamEngine::fingerprint_of(const ClamavConfig& c) {
  std::ostringstream out;
  out << c.scan_raw << ';' << c.max_filesize << ';' << c.max_scansize << ';' << c.max_recursion << ';'
      << c.max_files << ';' << c.max_scantime_ms << ';' << c.spool_dir << ';' << c.temp_dir << ';';
  for (const std::string& t : c.trusted_files) out << "trust:" << t << ';';
  auto stamp = [&](const fs::path& p) {
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    auto mtime = fs::last_write_time(p, ec).time_since_epoch().count();
    out << p.string() << ':' << (ec ? -1 : static_cast<long long>(size)) << ':' << mtime << ';';
  };
  for (const auto& [dir, own] : dirs_of(c)) {
    std::vector<DbFile> files;
    if (!list_databases(dir, own, files).ok()) out << dir << ":missing;";
    for (const DbFile& f : files) stamp(f.path);
  }
  if (!c.policy_file.empty()) stamp(c.policy_file);
  return out.str();
}

Result<std::shared_ptr<const ClamEngine>> ClamEngine::load(const ClamavConfig& c, std::vector<Diagnostic>& diags) {
  auto t0 = std::chrono::steady_clock::now();
  if (cl_error_t rc = init_once(); rc != CL_SUCCESS)
    return Status::Internal(std::string("libclamav cannot start: ") + cl_strerror(rc));
  auto e = std::shared_ptr<ClamEngine>(new ClamEngine());
  e->fingerprint_ = fingerprint_of(c);
  std::size_t before = diags.size();
  if (!c.policy_file.empty()) e->policy_ = SignaturePolicy::load(c.policy_file, diags).by_name;
  if (diags.size() != before) return Status::InvalidArgument("signature policy " + c.policy_file + " has errors");

  std::vector<DbFile> files;
  for (const auto& [dir, own] : dirs_of(c)) {
    Status s = list_databases(dir, own, files);
    if (!s.ok()) return s;
  }
  if (files.empty()) return Status::NotFound("no signature database in the configured directories");
  e->engine_.reset(cl_engine_new());
  if (!e->engine_) return Status::Internal("libclamav: cannot allocate an engine");
  cl_engine* eng = e->engine_.get();
  LoadContext lc;
  lc.engine = e.get();
  cl_engine_set_clcb_sigload(eng, &LoadContext::on_sigload, &lc);
  for (const DbFile& f : files) {
    lc.file = static_cast<std::uint32_t>(e->files_.size());
    lc.own = f.own;
    std::string base = f.path.filename().string();
    lc.trusted_file = f.own || std::find(c.trusted_files.begin(), c.trusted_files.end(), base) != c.trusted_files.end();
    e->files_.push_back(f.path.string());
    std::vector<std::string> messages;
    t_capture = &messages;
    cl_error_t rc = cl_load(f.path.c_str(), eng, &e->signatures_, CL_DB_STDOPT);
    t_capture = nullptr;
    if (rc != CL_SUCCESS) {
      std::string why = cl_strerror(rc);
      for (const std::string& m : messages) {
        if (m.find("line") != std::string::npos) why += " (" + m + ")";
      }
      return Status::Corruption("signature database " + f.path.string() + ": " + why);
    }
  }
  cl_engine_set_clcb_sigload(eng, nullptr, nullptr);
  if (e->signatures_ == 0) return Status::NotFound("signature databases loaded no signature (all ignored?)");
  cl_engine_set_num(eng, CL_ENGINE_MAX_FILESIZE, static_cast<long long>(c.max_filesize));
  cl_engine_set_num(eng, CL_ENGINE_MAX_SCANSIZE, static_cast<long long>(c.max_scansize));
  cl_engine_set_num(eng, CL_ENGINE_MAX_RECURSION, c.max_recursion);
  cl_engine_set_num(eng, CL_ENGINE_MAX_FILES, c.max_files);
  cl_engine_set_num(eng, CL_ENGINE_MAX_SCANTIME, c.max_scantime_ms);
  const std::string& tmp = c.temp_dir.empty() ? c.spool_dir : c.temp_dir;
  if (!tmp.empty()) cl_engine_set_str(eng, CL_ENGINE_TMPDIR, tmp.c_str());
  cl_error_t rc = cl_engine_compile(eng);
  if (rc != CL_SUCCESS) return Status::Corruption(std::string("signature engine compile: ") + cl_strerror(rc));
  cl_engine_set_clcb_virus_found(eng, on_match);
  e->load_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (lc.ignored > 0) log().info("clamav: {} signature(s) ignored by {}", lc.ignored, c.policy_file);
  return std::shared_ptr<const ClamEngine>(std::move(e));
}

AvResult ClamEngine::classify(const std::vector<std::string>& names) const {
  AvResult r;
  for (const std::string& n : names) {
    if (std::string_view(n).substr(0, kLimitsPrefix.size()) == kLimitsPrefix) {
      r.limits.push_back(n);
      continue;
    }
    // libclamav reports a signature again for each layer it matches in
    // (the raw mail, then the decoded part): once is enough.
    if (std::any_of(r.matches.begin(), r.matches.end(), [&](const AvMatch& x) { return x.name == n; })) continue;
    AvMatch m;
    m.name = n;
    m.display = n;
    std::string key(strip_suffix(n));
    if (key.size() == n.size()) {  // no suffix: a signed CVD/CLD signature
      m.file = "official database";
      m.trusted = true;
    } else if (auto it = unofficial_.find(key); it != unofficial_.end()) {
      m.file = files_[it->second.file];
      m.trusted = it->second.trusted;
      if (it->second.own) m.display = key;
    } else {
      m.file = "unknown database";
    }
    m.action = m.trusted ? SigAction::kReject : SigAction::kScore;
    if (auto p = policy_.find(key); p != policy_.end()) m.action = p->second;
    if (m.action != SigAction::kIgnore) r.matches.push_back(std::move(m));
  }
  return r;
}

namespace {

cl_scan_options scan_options(bool mail) {
  cl_scan_options opts{};
  opts.general = CL_SCAN_GENERAL_ALLMATCHES | CL_SCAN_GENERAL_HEURISTICS;
  opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;  // report a limit hit, nothing else heuristic
  opts.parse = ~0u;                                // archives, PDF, Office, HTML, ...
  if (!mail) opts.parse &= ~static_cast<unsigned>(CL_SCAN_PARSE_MAIL);
  return opts;
}

struct FmapClose {
  void operator()(cl_fmap_t* m) const {
    if (m != nullptr) cl_fmap_close(m);
  }
};

// libclamav's answer -> names or an error (a timeout is a limit, not an error).
Status finish(cl_error_t rc, const char* first, std::vector<std::string>& names) {
  if (rc == CL_ETIMEOUT) {
    names.emplace_back(std::string(kLimitsPrefix) + ".MaxScanTime");
    return Status::Ok();
  }
  if (rc != CL_CLEAN && rc != CL_VIRUS) return Status::Internal(std::string("libclamav: ") + cl_strerror(rc));
  if (rc == CL_VIRUS && names.empty() && first != nullptr) names.emplace_back(first);
  return Status::Ok();
}

}  // namespace

Result<AvResult> ClamEngine::scan_memory(std::string_view bytes, bool mail) const {
  std::vector<std::string> names;
  if (bytes.empty()) return classify(names);
  std::unique_ptr<cl_fmap_t, FmapClose> map(cl_fmap_open_memory(bytes.data(), bytes.size()));
  if (!map) return Status::Internal("libclamav: cannot map the message");
  cl_scan_options opts = scan_options(mail);
  const char* first = nullptr;
  unsigned long scanned = 0;
  ScanMessages messages;
  cl_error_t rc = cl_scanmap_callback(map.get(), nullptr, &first, &scanned, engine_.get(), &opts, &names);
  Status s = finish(rc, first, names);
  if (s.ok()) s = messages.verdict();
  if (!s.ok()) return s;
  return classify(names);
}

Result<AvResult> ClamEngine::scan_fd(int fd, bool mail) const {
  std::vector<std::string> names;
  cl_scan_options opts = scan_options(mail);
  const char* first = nullptr;
  unsigned long scanned = 0;
  ScanMessages messages;
  cl_error_t rc = cl_scandesc_callback(fd, nullptr, &first, &scanned, engine_.get(), &opts, &names);
  Status s = finish(rc, first, names);
  if (s.ok()) s = messages.verdict();
  if (!s.ok()) return s;
  return classify(names);
}

SignaturePolicy SignaturePolicy::load(const std::string& path, std::vector<Diagnostic>& diags) {
  SignaturePolicy p;
  std::error_code ec;
  if (!fs::exists(path, ec)) return p;
  std::ifstream in(path);
  if (!in) {
    diags.push_back({path, 0, "cannot read the signature policy file"});
    return p;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream words(line);
    std::string action, name, extra;
    words >> action;
    if (action.empty() || action[0] == '#') continue;
    words >> name >> extra;
    SigAction a;
    if (action == "ignore") a = SigAction::kIgnore;
    else if (action == "score") a = SigAction::kScore;
    else if (action == "reject") a = SigAction::kReject;
    else {
      diags.push_back({path, n, "unknown action '" + clip(action, 40) + "' (ignore, score or reject NAME)"});
      continue;
    }
    if (name.empty() || !extra.empty()) {
      diags.push_back({path, n, "expected '" + action + " SIGNATURE_NAME'"});
      continue;
    }
    p.by_name[std::string(strip_suffix(name))] = a;
  }
  return p;
}

Status run_canary(const ClamEngine& engine, const ClamavConfig& c, std::vector<std::string>& problems) {
  std::size_t flagged = 0, scanned = 0;
  for (const std::string& dir : c.canary_dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return Status::NotFound("canary directory " + dir + ": no such directory");
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec) && files.size() < 100000) files.push_back(it->path().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::error_code size_ec;
      std::size_t size = static_cast<std::size_t>(fs::file_size(f, size_ec));
      std::string bytes(size_ec ? 0 : std::min(size, c.max_av_bytes), '\0');
      in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      bytes.resize(static_cast<std::size_t>(in.gcount()));
      ++scanned;
      auto r = engine.scan_memory(bytes, true);
      if (!r.ok()) return Status::Internal("canary message " + f + ": " + r.status().message());
      if (r.value().matches.empty()) continue;
      ++flagged;
      for (const AvMatch& m : r.value().matches) {
        problems.push_back("signature " + m.name + " (" + m.file + ", action " + sig_action_name(m.action) +
                           ") matched known-good message " + f);
      }
    }
  }
  if (flagged > static_cast<std::size_t>(std::max(0, c.canary_max_flagged))) {
    return Status::InvalidArgument(std::to_string(flagged) + " of " + std::to_string(scanned) +
                                   " canary message(s) flagged (at most " + std::to_string(c.canary_max_flagged) +
                                   " allowed): " + (problems.empty() ? std::string() : problems.front()));
  }
  return Status::Ok();
}

}  // namespace spamgate
