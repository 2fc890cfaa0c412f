// test_util.h - helpers for unit tests: temporary directories, snapshots
// built from rule text written by the test, metric values and log lines.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <cstdint>
#include <utility>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>

#include "config/load.h"
#include "spamgate/metrics.h"
#include "spamgate/pipeline.h"
#include "spamgate/snapshot.h"
#include "util/log.h"

namespace spamgate::test {

// The log lines written while it lives, as "LEVEL text\n" (the logger's level applies).
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100)) {
    sink_->set_pattern("%l %v");
    log().sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& s = log().sinks();
    s.erase(std::remove(s.begin(), s.end(), sink_), s.end());
  }
  std::vector<std::string> lines() const { return sink_->last_formatted(); }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

// The value of metric sample `key` ("name{labels}") as the endpoint would
// serve it now; -1 if absent.
inline double metric_value(const std::string& key) {
  std::string text = Metrics::get().render({});
  std::size_t at = text.find("\n" + key + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size() + 2));
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("spamgate-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name, const std::string& content) const {
    auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// A config in `dir` whose rules_dir holds one file with `rules`; `toml` is
// appended to the config (e.g. "threshold = 5.5\n").
inline std::string write_config(const TempDir& dir, const std::string& rules, const std::string& toml = "",
                                const std::string& local = "") {
  dir.file("rules/50_test.cf", rules);
  if (!local.empty()) dir.file("local.cf", local);
  return dir.file("spamgate.toml", "rules_dir = \"rules\"\nlocal_rules = \"local.cf\"\n"
                                   "hostname = \"mx1.gateway.example\"\n"
                                   "support_url = \"https://help.example.net/spam\"\n"
                                   "service_name = \"Example Gateway\"\n" + toml +
                                   // The classifier's store in the test's directory, never /var/lib.
                                   (toml.find("[bayes]") == std::string::npos ? "\n[bayes]\npath = \"bayes\"\n" : ""));
}

inline std::shared_ptr<const Snapshot> snapshot_with(const std::string& rules, std::vector<Diagnostic>* diags = nullptr,
                                                     const std::string& toml = "", const std::string& local = "") {
  static std::vector<std::unique_ptr<TempDir>> keep;  // files stay for the test run
  keep.push_back(std::make_unique<TempDir>());
  std::string cfg = write_config(*keep.back(), rules, toml, local);
  std::vector<Diagnostic> d;
  auto s = load_snapshot(cfg, diags ? *diags : d);
  if (!s.ok()) return nullptr;
  return s.value();
}

// `msg` through the whole pipeline as `scan` replays it (outbound looked up,
// not counted), for `sender`.
inline Handled handle(const Snapshot& snap, const std::string& msg, const Sender& sender = {},
                      const Envelope& env = {}) {
  return handle_message(snap, msg, env, sender, OutboundMode::kLookUp, "test");
}

// `msg` as it would be delivered (the Disposition's header edits applied).
inline std::string delivered(const Snapshot& snap, const std::string& msg, const Sender& sender = {}) {
  return apply_plan(msg, handle(snap, msg, sender).disposition.plan);
}

// Names of the scored rules that hit `msg` under `snap`.
inline std::vector<std::string> hits_of(const Snapshot& snap, const std::string& msg) {
  ScanResult r = scan_message(snap, msg, Envelope{});
  std::vector<std::string> out;
  for (const ScoredHit& h : r.verdict.hits) out.push_back(h.name);
  return out;
}

inline bool hit(const Snapshot& snap, const std::string& msg, const std::string& rule) {
  ScanResult r = scan_message(snap, msg, Envelope{});
  for (const Hit& h : r.hits) {
    if (h.name == rule) return true;
  }
  return false;
}

// A zip archive with `files` ({name, data}) stored without compression: for
// malware and archive-bomb tests that need real archives, made here.
inline std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& files) {
  auto le = [](std::string& o, std::uint32_t v, int n) {
    for (int i = 0; i < n; ++i) o.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto crc32 = [](const std::string& b) {
    std::uint32_t c = 0xffffffffu;
    for (unsigned char ch : b) {
      c ^= ch;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
  };
  std::string z, cd;
  for (const auto& [name, data] : files) {
    std::uint32_t off = static_cast<std::uint32_t>(z.size()), crc = crc32(data);
    std::uint32_t size = static_cast<std::uint32_t>(data.size()), n = static_cast<std::uint32_t>(name.size());
    le(z, 0x04034b50, 4);
    for (std::uint32_t v : {10u, 0u, 0u, 0u, 0u}) le(z, v, 2);
    le(z, crc, 4); le(z, size, 4); le(z, size, 4); le(z, n, 2); le(z, 0, 2);
    z += name + data;
    le(cd, 0x02014b50, 4);
    for (std::uint32_t v : {20u, 10u, 0u, 0u, 0u, 0u}) le(cd, v, 2);
    le(cd, crc, 4); le(cd, size, 4); le(cd, size, 4); le(cd, n, 2);
    for (int i = 0; i < 4; ++i) le(cd, 0, 2);
    le(cd, 0, 4); le(cd, off, 4);
    cd += name;
  }
  std::uint32_t cd_off = static_cast<std::uint32_t>(z.size()), cd_size = static_cast<std::uint32_t>(cd.size());
  std::uint32_t count = static_cast<std::uint32_t>(files.size());
  z += cd;
  le(z, 0x06054b50, 4); le(z, 0, 2); le(z, 0, 2); le(z, count, 2); le(z, count, 2);
  le(z, cd_size, 4); le(z, cd_off, 4); le(z, 0, 2);
  return z;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace spamgate::test
