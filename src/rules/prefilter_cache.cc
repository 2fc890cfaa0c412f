// prefilter_cache.cc - compiled Hyperscan databases on disk (see prefilter_cache.h).
//
// File layout:
//   "spamgate-hs 1\n"
//   <patterns>\n                 one line per pattern: its refusal, "" if compiled
//   <refusal 1>\n ... <refusal n>\n
//   <bytes>\n<serialized database>   (bytes 0: no database, every pattern refused)
//   <sha256 hex of everything above>\n
#include "rules/prefilter_cache.h"

#include <glib.h>
#include <hs/hs.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/c_handle.h"

namespace spamgate {

namespace {

constexpr const char* kMagic = "spamgate-hs 1\n";
constexpr auto kUnusedFor = std::chrono::hours(24 * 30);

std::string sha256_hex(std::string_view data) {
  GChecksumPtr sum(g_checksum_new(G_CHECKSUM_SHA256));
  g_checksum_update(sum.get(), reinterpret_cast<const guchar*>(data.data()), static_cast<gssize>(data.size()));
  return g_checksum_get_string(sum.get());
}

std::string file_for(const std::string& dir, const std::string& key) {
  // Hyperscan's version is part of the name: a database it serialized
  // reads back only into the same version.
  return dir + "/" + sha256_hex(key + '\x1d' + hs_version()) + ".hsdb";
}

struct MiscFree {
  void operator()(char* p) const { std::free(p); }
};

// Old files: those not read nor written for kUnusedFor.
void remove_unused(const std::string& dir) {
  std::error_code ec;
  const auto now = std::filesystem::file_time_type::clock::now();
  // The error_code forms throughout (increment too): a cleanup never throws.
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const auto& e = *it;
    const bool ours = e.path().extension() == ".hsdb" || e.path().filename().string().find(".hsdb.tmp") != std::string::npos;
    if (!ours) continue;
    std::error_code tec;
    auto t = e.last_write_time(tec);
    if (!tec && now - t > kUnusedFor) std::filesystem::remove(e.path(), tec);
  }
}

}  // namespace

std::shared_ptr<const PrefilterChunk> read_cached_chunk(const std::string& dir, const std::string& key,
                                                        std::size_t patterns, std::string& error) {
  const std::string path = file_for(dir, key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;  // not cached yet
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const char* why) -> std::shared_ptr<const PrefilterChunk> {
    error = "rules cache: " + path + " is " + why + "; compiled again";
    return nullptr;
  };
  // The checksum line (64 hex digits) closes the file.
  if (all.size() < std::strlen(kMagic) + 65 || all.back() != '\n') return bad("truncated");
  const std::size_t sum_at = all.size() - 65;
  const std::string_view body(all.data(), sum_at);
  if (sha256_hex(body) != std::string_view(all).substr(sum_at, 64)) return bad("damaged (checksum)");
  std::istringstream s{std::string(body)};
  std::string line;
  std::getline(s, line);
  if (line + "\n" != kMagic) return bad("not a database file");
  std::getline(s, line);
  if (std::strtoull(line.c_str(), nullptr, 10) != patterns) return bad("for other rules");
  auto chunk = std::make_shared<PrefilterChunk>();
  for (std::size_t i = 0; i < patterns; ++i) {
    if (!std::getline(s, line)) return bad("truncated");
    chunk->problems.push_back(line);
  }
  std::getline(s, line);
  const std::size_t bytes = std::strtoull(line.c_str(), nullptr, 10);
  const auto at = static_cast<std::size_t>(s.tellg());
  if (at + bytes != body.size()) return bad("truncated");
  if (bytes > 0) {
    hs_database_t* db = nullptr;
    if (hs_deserialize_database(body.data() + at, bytes, &db) != HS_SUCCESS) return bad("for another Hyperscan");
    chunk->db.reset(db);
  }
  // Used: its time is renewed so the cleanup keeps it.
  ::utime(path.c_str(), nullptr);
  return chunk;
}

bool write_cached_chunk(const std::string& dir, const std::string& key, const PrefilterChunk& chunk,
                        std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string body = kMagic;
  body += std::to_string(chunk.problems.size()) + "\n";
  for (const std::string& p : chunk.problems) {
    std::string one = p;
    for (char& c : one)
      if (c == '\n') c = ' ';
    body += one + "\n";
  }
  std::string blob;
  if (chunk.db) {
    char* raw = nullptr;
    std::size_t size = 0;
    if (hs_serialize_database(chunk.db.get(), &raw, &size) != HS_SUCCESS) {
      error = "rules cache: Hyperscan could not serialize a database";
      return false;
    }
    std::unique_ptr<char, MiscFree> owned(raw);
    blob.assign(raw, size);
  }
  body += std::to_string(blob.size()) + "\n";
  body += blob;
  body += sha256_hex(body) + "\n";
  const std::string path = file_for(dir, key);
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      error = "rules cache: cannot write " + tmp + ": " + std::strerror(errno);
      return false;
    }
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    out.flush();
    if (!out) {
      error = "rules cache: cannot write " + tmp + ": " + std::strerror(errno);
      std::filesystem::remove(tmp, ec);
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "rules cache: cannot rename " + tmp + ": " + std::strerror(errno);
    std::filesystem::remove(tmp, ec);
    return false;
  }
  remove_unused(dir);
  return true;
}

}  // namespace spamgate
