// dkim.h - DKIM (RFC 6376) verification with libopendkim on our resolver.
//
// Interface:
//  - DkimLibrary: one libopendkim library handle per snapshot, its DNS
//    plugged into our Resolver through dkim_dns_set_query_* (key lookups
//    share the per-lookup timeout, the message's DNS budget and the cache).
//    Thread-safe: many verifiers use one library at once.
//  - DkimVerifier: one message, fed incrementally: the milter feeds it from
//    its header and body callbacks (no second copy of the message), `scan`
//    from the file. Not thread-safe; belongs to one Session or one scan.
//    At most 10 signatures per message are verified; the rest are ignored.
//  - DkimCheck: turns the verifier's results into symbols (DKIM_VALID,
//    DKIM_VALID_AU, DKIM_INVALID, DKIM_NONE, DKIM_TEMPERROR) and the
//    AuthResults' dkim part.
// DIAGNOSTICS: results carry libopendkim's reason per signature (e.g. "body
// hash mismatch", "key DNS query failed"); a library that cannot start is an
// error at load; nothing is logged per message here (the verdict line has it).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/auth.h"
#include "spamgate/check.h"
#include "spamgate/resolver.h"

struct dkim_lib;
struct dkim;

namespace spamgate {

struct DkimLibClose { void operator()(dkim_lib* p) const; };
struct DkimFree { void operator()(dkim* p) const; };

class DkimLibrary {
 public:
  // Internal when libopendkim cannot start.
  static Result<std::shared_ptr<const DkimLibrary>> create(std::shared_ptr<Resolver> resolver);
  dkim_lib* lib() const { return lib_.get(); }
  Resolver* resolver() const { return resolver_.get(); }

 private:
  std::unique_ptr<dkim_lib, DkimLibClose> lib_;
  std::shared_ptr<Resolver> resolver_;
};

class DkimVerifier {
 public:
  // Bodies are hashed up to `max_body_bytes`; past it the signatures are
  // reported "neutral" (not verified) instead of failing on a partial body.
  DkimVerifier(std::shared_ptr<const DkimLibrary> lib, std::size_t max_body_bytes);
  DkimVerifier(const DkimVerifier&) = delete;
  DkimVerifier& operator=(const DkimVerifier&) = delete;

  // One header field as on the wire, "Name:value" with its folding, without
  // the final line end.
  void header(std::string_view field);
  void end_of_headers(Deadline deadline);
  void body(std::string_view chunk);
  // Whether more body is useful: the message is signed and under the limit.
  bool wants_body() const { return state_ == State::kBody && !too_big_; }
  // Ends the message (key lookups happen here, bounded by `deadline`) and
  // returns one result per signature. Call once.
  DkimAuth finish(Deadline deadline);

  // Feeds a whole message held in memory (scan mode).
  void feed_message(std::string_view bytes, Deadline deadline);

 private:
  enum class State { kHeaders, kBody, kNoSignature, kError, kDone };
  std::shared_ptr<const DkimLibrary> lib_;
  std::unique_ptr<dkim, DkimFree> handle_;
  State state_ = State::kHeaders;
  std::size_t max_body_bytes_;
  std::size_t body_bytes_ = 0;
  bool too_big_ = false;
  std::string error_;  // why the handle could not go on (state kError)
};

class DkimCheck final : public Check {
 public:
  explicit DkimCheck(std::shared_ptr<const DkimLibrary> lib, std::size_t max_body_bytes)
      : lib_(std::move(lib)), max_body_bytes_(max_body_bytes) {}
  std::string_view name() const override { return "dkim"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();

 private:
  std::shared_ptr<const DkimLibrary> lib_;
  std::size_t max_body_bytes_;
};

// Whether `a` and `b` share a registered domain (DMARC relaxed alignment).
bool relaxed_aligned(std::string_view a, std::string_view b);

}  // namespace spamgate
