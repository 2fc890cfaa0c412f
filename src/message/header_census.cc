// header_census.cc - HeaderCensus (see message.h): the header fields a scan
// removes, counted as the header block streams by.
//
// Bounded by design: a hostile message may carry millions of fields (a 35 MB
// header block is under the size limit), so the census keeps per-name counts
// and at most `cap` indexes, never the fields themselves. What is past the
// cap is still counted, so forged() is exact and over_cap() can be scored.
#include <algorithm>

#include "spamgate/auth.h"
#include "spamgate/message.h"

namespace spamgate {

namespace {
constexpr std::size_t kMaxNames = 64;  // distinct X-Spam-* spellings remembered
}  // namespace

HeaderCensus::HeaderCensus(std::string own_authserv_id, std::string tag_header, std::size_t cap)
    : own_(ascii_lower(own_authserv_id)), tag_(ascii_lower(tag_header)), tag_name_(std::move(tag_header)), cap_(cap) {}

void HeaderCensus::add(std::string_view name, std::string_view value) {
  ++fields_;
  if (name.size() > 7 && ascii_lower(name.substr(0, 7)) == "x-spam-") {
    ++forged_;
    std::string lname = ascii_lower(name);
    auto it = std::find_if(x_spam_.begin(), x_spam_.end(), [&](const Count& c) { return c.lname == lname; });
    if (it != x_spam_.end()) ++it->count;
    else if (x_spam_.size() < kMaxNames) x_spam_.push_back({std::string(name), std::move(lname), 1});
    else names_dropped_ = true;  // cannot all be removed: over_cap()
    return;
  }
  if (!tag_.empty() && name.size() == tag_.size() && ascii_lower(name) == tag_) {
    ++forged_;
    ++tag_fields_;
    return;
  }
  if (name.size() == 22 && ascii_lower(name) == "authentication-results") {
    ++ar_seen_;
    if (own_.empty() || authserv_id_of(value.substr(0, 4096)) != own_) return;
    ++forged_;
    if (own_ar_.size() < cap_) own_ar_.push_back(ar_seen_);
  }
}

void HeaderCensus::add_block(std::string_view bytes) {
  walk_header_block(bytes, [this](const RawField& f) { add(f.name, f.value); });
}

std::vector<HeaderCensus::Removal> HeaderCensus::removals() const {
  // Forged authentication claims first (what a mail client shows as
  // "verified"), then the outbound tag (what complaints are charged to),
  // then X-Spam-* fields. Within a name the first fields go (those a reader
  // meets first), highest index first so that no removal renumbers the next.
  std::vector<Removal> out;
  std::size_t room = cap_;
  for (std::size_t i = own_ar_.size(); i >= 1; --i) out.push_back({"Authentication-Results", own_ar_[i - 1]});
  room -= own_ar_.size();  // own_ar_ holds at most cap_
  auto first_n = [&](const std::string& name, int count) {
    int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(count), room));
    for (int i = n; i >= 1; --i) out.push_back({name, i});
    room -= static_cast<std::size_t>(n);
  };
  if (tag_fields_ > 0) first_n(tag_name_, tag_fields_);
  for (const Count& c : x_spam_) first_n(c.name, c.count);
  return out;
}

}  // namespace spamgate
