// guard.cc - OutboundGuard: rate windows, holds, complaints (see outbound.h).
//
// State keys (state_store.h):
//   rate:u:ACCOUNT / rate:d:DOMAIN  windows of messages and recipients (minute, hour, day)
//   spam:ACCOUNT                    window of spam verdicts and complaints
//   hold:u:ACCOUNT / hold:d:DOMAIN  a hold: since, until, reason (expires at until)
//   heldq:ACCOUNT                   queue ids put in Postfix's hold queue for it
//   tag:TAG / mid:MESSAGE-ID        -> account, for feedback-loop reports
//   holdindex                       the hold keys, one per line: holds() reads
//                                   only these (a prefix scan would walk every
//                                   Message-ID record in Redis at each scrape)
// DIAGNOSTICS: none here; the milter and `learn --arf` log what it returns.
#include <fcntl.h>
#include <glib.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>

#include "outbound/window.h"
#include "spamgate/check.h"
#include "spamgate/message.h"
#include "spamgate/outbound.h"
#include "spamgate/snapshot.h"
#include "spamgate/state_store.h"
#include "util/c_handle.h"
#include "util/log.h"
#include "util/spool_file.h"

namespace spamgate {

using outbound_detail::Series;

namespace {

constexpr const char* kNames[RateLimits::kCount] = {"messages_per_minute",   "messages_per_hour",
                                                    "messages_per_day",      "recipients_per_minute",
                                                    "recipients_per_hour",   "recipients_per_day"};
const std::vector<std::uint32_t> kRateWidths = {1, 60, 1440};  // minute, hour, day: 60 slots each
constexpr std::int64_t kRateTtl = 2 * 86400;

std::string domain_of(std::string_view address) {
  std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : ascii_lower(address.substr(at + 1));
}

std::string hold_value(const HoldInfo& h) {
  return fmt::format("{}\t{}\t{}\t{}", h.since, h.until, h.who, h.reason);
}

std::optional<HoldInfo> parse_hold(std::string_view v) {
  HoldInfo h;
  std::vector<std::string> f;
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    std::size_t tab = v.find('\t', start);
    if (tab == std::string_view::npos) return std::nullopt;
    f.emplace_back(v.substr(start, tab - start));
    start = tab + 1;
  }
  h.since = std::atoll(f[0].c_str());
  h.until = std::atoll(f[1].c_str());
  h.who = f[2];
  h.reason = std::string(v.substr(start));
  return h;
}

// Removes the keys `drop` picks from the hold index.
Status drop_from_hold_index(StateStore& st, const std::function<bool(const std::string&)>& drop) {
  return st.update("holdindex", 0, [&](std::optional<std::string>& v) {
    std::istringstream in(v.value_or(""));
    std::string kept;
    for (std::string key; std::getline(in, key);)
      if (!drop(key)) kept += key + "\n";
    v = kept;
  });
}

std::string normalized_message_id(std::string_view id) {
  std::string s(id.substr(0, 400));
  std::size_t b = s.find_first_not_of(" \t<"), e = s.find_last_not_of(" \t>");
  if (b == std::string::npos) return {};
  return s.substr(b, e - b + 1);
}

std::string plural(double n, const char* one) {
  long v = std::lround(n);
  return fmt::format("{} {}{}", v, one, v == 1 ? "" : "s");
}

}  // namespace

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_unix_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

const char* RateLimits::name(int i) { return i >= 0 && i < kCount ? kNames[i] : "?"; }
int RateLimits::index_of(std::string_view name) {
  for (int i = 0; i < kCount; ++i)
    if (name == kNames[i]) return i;
  return -1;
}
std::int64_t RateLimits::window_seconds(int i) { return i % 3 == 0 ? 60 : i % 3 == 1 ? 3600 : 86400; }

std::string OutboundCounts::summary() const {
  auto w = [](const std::array<double, RateLimits::kCount>& c) {
    return fmt::format("msgs {:.0f}/min {:.0f}/h {:.0f}/day rcpts {:.0f}/min {:.0f}/h {:.0f}/day", c[0], c[1], c[2],
                       c[3], c[4], c[5]);
  };
  return fmt::format("account: {}; domain: {}; spam {:.0f} complaints {:.0f}", w(user), w(domain), spam, complaints);
}

LimitOverrides parse_limit_overrides(std::string_view text, const std::string& file, std::vector<Diagnostic>& diags) {
  LimitOverrides out;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (std::size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string who, word;
    if (!(words >> who)) continue;
    LimitOverride o;
    bool any = false;
    while (words >> word) {
      any = true;
      if (word == "unlimited") {
        o.v.fill(0);
        continue;
      }
      std::size_t eq = word.find('=');
      int idx = eq == std::string::npos ? -1 : RateLimits::index_of(word.substr(0, eq));
      if (idx < 0) {
        diags.push_back({file, n, "'" + word + "': expected NAME=NUMBER (messages_per_minute, messages_per_hour, "
                                  "messages_per_day, recipients_per_minute, recipients_per_hour, recipients_per_day) or "
                                  "unlimited"});
        continue;
      }
      std::string num = word.substr(eq + 1);
      if (num.empty() || num.size() > 9 || num.find_first_not_of("0123456789") != std::string::npos) {
        diags.push_back({file, n, "'" + word + "': the limit must be a whole number (0 = no limit)"});
        continue;
      }
      o.v[idx] = std::atoll(num.c_str());
    }
    if (!any) {
      diags.push_back({file, n, "'" + who + "' has no limits: add NAME=NUMBER or unlimited"});
      continue;
    }
    if (who.rfind("domain:", 0) == 0) out.domains[ascii_lower(who.substr(7))] = o;
    else out.accounts[ascii_lower(who)] = o;
  }
  return out;
}

OutboundSender outbound_sender(const Envelope& env) {
  // Bounded: an envelope sender is the client's to choose, and store keys
  // are at most 400 bytes (a real address has at most 254).
  constexpr std::size_t kMax = 254;
  OutboundSender s;
  s.account = ascii_lower(std::string_view(env.auth_user.empty() ? env.mail_from : env.auth_user).substr(0, kMax));
  s.domain = domain_of(s.account);
  if (s.domain.empty()) s.domain = domain_of(std::string_view(env.mail_from).substr(0, kMax));
  return s;
}

OutboundGuard::OutboundGuard(OutboundConfig cfg, BayesConfig store_cfg, LimitOverrides overrides)
    : cfg_(std::move(cfg)), store_cfg_(std::move(store_cfg)), overrides_(std::move(overrides)) {}

Status OutboundGuard::store(std::shared_ptr<StateStore>& out) const {
  std::lock_guard lock(mu_);
  if (!store_) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (now < next_try_) return last_error_;
    auto r = open_state_store(store_cfg_);
    if (!r.ok()) {
      last_error_ = r.status();
      next_try_ = now + 30;  // as the classifier: retried every 30 s
      return last_error_;
    }
    store_ = r.value();
  }
  out = store_;
  return Status::Ok();
}

namespace {
// `base` with the override of `name` applied (its -1 entries keep `base`).
RateLimits overridden(RateLimits base, const std::map<std::string, LimitOverride>& overrides, const std::string& name) {
  if (auto it = overrides.find(name); it != overrides.end())
    for (int i = 0; i < RateLimits::kCount; ++i)
      if (it->second.v[i] >= 0) base.v[i] = static_cast<std::uint32_t>(it->second.v[i]);
  return base;
}
}  // namespace

RateLimits OutboundGuard::limits_for_account(const std::string& account) const {
  return overridden(cfg_.user_limits, overrides_.accounts, account);
}

RateLimits OutboundGuard::limits_for_domain(const std::string& domain) const {
  return overridden(cfg_.domain_limits, overrides_.domains, domain);
}

Status OutboundGuard::held(const OutboundSender& s, std::optional<HoldInfo>& out) const {
  out.reset();
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  for (const std::string& key : {"hold:u:" + s.account, "hold:d:" + s.domain}) {
    if (key.size() == 7) continue;  // no domain
    std::optional<std::string> v;
    if (Status e = st->get(key, v); !e.ok()) return e;
    if (v && (out = parse_hold(*v))) return Status::Ok();
  }
  return Status::Ok();
}

Status OutboundGuard::make_hold(StateStore& st, const std::string& key, HoldInfo info,
                                std::optional<HoldInfo>& hold) const {
  bool created = false;
  Status e = st.update_many({{key, info.until - info.since,
                              [&](std::optional<std::string>& v) {
                                created = !v || !parse_hold(*v);
                                if (created) v = hold_value(info);  // an existing hold is kept (not extended)
                              }},
                             {"holdindex", 0, [&](std::optional<std::string>& v) {
                                std::string list = v.value_or("");
                                if (("\n" + list).find("\n" + key + "\n") == std::string::npos) list += key + "\n";
                                v = list;
                              }}});
  if (e.ok() && created) hold = std::move(info);
  return e;
}

Status OutboundGuard::count_message(const OutboundSender& s, std::size_t recipients, bool spam, std::int64_t now,
                                    std::string_view message_id, std::string_view tag, OutboundCounts& counts,
                                    std::optional<HoldInfo>& hold) const {
  hold.reset();
  counts = OutboundCounts{};
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  const auto rcpts = static_cast<std::uint32_t>(std::min<std::size_t>(recipients, 1000000));
  auto bump = [rcpts, now](std::array<double, RateLimits::kCount>* c) {
    return [c, rcpts, now](std::optional<std::string>& v) {
      std::vector<Series> series = outbound_detail::decode(v ? std::string_view(*v) : std::string_view(), kRateWidths);
      for (std::size_t w = 0; w < series.size(); ++w) {
        series[w].add(now, 1, rcpts);
        std::tie((*c)[w], (*c)[w + 3]) = series[w].count(now);
      }
      v = outbound_detail::encode(series);
    };
  };
  // One atomic change (one disk sync) for the account's and the domain's
  // windows, the spam window (spam only) and the Message-ID and tag maps.
  std::vector<StateStore::Update> batch{{"rate:u:" + s.account, kRateTtl, bump(&counts.user)}};
  if (!s.domain.empty()) batch.push_back({"rate:d:" + s.domain, kRateTtl, bump(&counts.domain)});
  if (spam) batch.push_back(spam_update(s.account, 1, 0, now, counts));
  if (Status e = sent_updates(*st, s, message_id, tag, batch); !e.ok()) return e;
  if (Status e = st->update_many(batch); !e.ok()) return e;

  auto over = [&](const RateLimits& l, const std::array<double, RateLimits::kCount>& c) -> int {
    for (int i = 0; i < RateLimits::kCount; ++i)
      if (l.v[i] != 0 && c[i] > l.v[i] + 1e-9) return i;
    return -1;
  };
  auto limit_hold = [&](const std::string& key, std::string who, int i, double count, std::uint32_t limit) {
    HoldInfo h{std::move(who),
               fmt::format("{} passed: {:.0f} > {} in the last {}", RateLimits::name(i), count, limit,
                           i % 3 == 0 ? "minute" : i % 3 == 1 ? "hour" : "day"),
               now, now + hold_length(RateLimits::window_seconds(i))};
    return make_hold(*st, key, std::move(h), hold);
  };
  const RateLimits user = limits_for_account(s.account);
  if (int i = over(user, counts.user); i >= 0)
    return limit_hold("hold:u:" + s.account, s.account, i, counts.user[i], user.v[i]);
  const RateLimits domain = limits_for_domain(s.domain);
  if (int j = s.domain.empty() ? -1 : over(domain, counts.domain); j >= 0)
    return limit_hold("hold:d:" + s.domain, "domain " + s.domain, j, counts.domain[j], domain.v[j]);
  return spam ? spam_hold(*st, s.account, now, counts, hold) : Status::Ok();
}

StateStore::Update OutboundGuard::spam_update(const std::string& account, std::uint32_t spam,
                                              std::uint32_t complaints, std::int64_t now,
                                              OutboundCounts& counts) const {
  const std::vector<std::uint32_t> widths = {
      static_cast<std::uint32_t>(std::max<std::int64_t>(1, cfg_.spam_window_seconds / outbound_detail::kSlots))};
  return {"spam:" + account, std::int64_t{cfg_.spam_window_seconds} * 2,
          [out = &counts, widths, spam, complaints, now](std::optional<std::string>& v) {
            std::vector<Series> series =
                outbound_detail::decode(v ? std::string_view(*v) : std::string_view(), widths);
            series[0].add(now, spam, complaints);
            std::tie(out->spam, out->complaints) = series[0].count(now);
            v = outbound_detail::encode(series);
          }};
}

Status OutboundGuard::spam_hold(StateStore& st, const std::string& account, std::int64_t now,
                                const OutboundCounts& counts, std::optional<HoldInfo>& hold) const {
  if (cfg_.hold_after_spam <= 0 || counts.spam + counts.complaints + 1e-9 < cfg_.hold_after_spam) return Status::Ok();
  HoldInfo h{account,
             fmt::format("{} + {} in the last {} s reached hold_after_spam = {}", plural(counts.spam, "spam verdict"),
                         plural(counts.complaints, "complaint"), cfg_.spam_window_seconds, cfg_.hold_after_spam),
             now, now + hold_length(cfg_.spam_window_seconds)};
  return make_hold(st, "hold:u:" + account, std::move(h), hold);
}

Status OutboundGuard::add_complaint(const std::string& account, std::int64_t now, OutboundCounts& counts,
                                    std::optional<HoldInfo>& hold) const {
  hold.reset();
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  const std::string who = ascii_lower(account);
  if (Status e = st->update_many({spam_update(who, 0, 1, now, counts)}); !e.ok()) return e;
  return spam_hold(*st, who, now, counts, hold);
}

Status OutboundGuard::sent_updates(const StateStore& st, const OutboundSender& s, std::string_view message_id,
                                   std::string_view tag, std::vector<StateStore::Update>& batch) const {
  const std::int64_t ttl = std::int64_t{cfg_.message_id_days} * 86400;
  if (std::string id = normalized_message_id(message_id); !id.empty())
    batch.push_back({"mid:" + id, ttl, [account = s.account](std::optional<std::string>& v) { v = account; }});
  if (tag.empty()) return Status::Ok();
  // The tag -> account map never changes; one write a day keeps it alive.
  std::optional<std::string> v;
  if (Status e = st.get("tag:" + std::string(tag), v); !e.ok()) return e;
  const std::size_t tab = v ? v->find('\t') : std::string::npos;
  if (tab != std::string::npos && v->substr(0, tab) == s.account &&
      std::atoll(v->c_str() + tab + 1) > unix_seconds() - 86400)
    return Status::Ok();
  std::string val = s.account + "\t" + std::to_string(unix_seconds());
  batch.push_back({"tag:" + std::string(tag), ttl, [val](std::optional<std::string>& cur) { cur = val; }});
  return Status::Ok();
}

Status OutboundGuard::note_quarantined(const std::string& account, std::string_view queue_id) const {
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  return st->update("heldq:" + account, 30 * 86400, [&](std::optional<std::string>& v) {
    std::string list = v.value_or("");
    if (std::count(list.begin(), list.end(), ' ') < 10000) list += std::string(queue_id) + " ";
    v = list;
  });
}

Status OutboundGuard::account_of_tag(std::string_view tag, std::string& account) const {
  account.clear();
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  std::optional<std::string> v;
  if (Status e = st->get("tag:" + std::string(tag.substr(0, 64)), v); !e.ok()) return e;
  if (v) account = v->substr(0, v->find('\t'));
  return Status::Ok();
}

Status OutboundGuard::account_of_message_id(std::string_view message_id, std::string& account) const {
  account.clear();
  std::string id = normalized_message_id(message_id);
  if (id.empty()) return Status::Ok();
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  std::optional<std::string> v;
  if (Status e = st->get("mid:" + id, v); !e.ok()) return e;
  if (v) account = *v;
  return Status::Ok();
}

Status OutboundGuard::release(const std::string& who, bool& was_held, std::vector<std::string>& queue_ids) const {
  was_held = false;
  queue_ids.clear();
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  const bool domain = who.rfind("domain:", 0) == 0;
  const std::string name = ascii_lower(domain ? who.substr(7) : who);
  std::vector<std::string> keys = domain ? std::vector<std::string>{"hold:d:" + name, "rate:d:" + name}
                                         : std::vector<std::string>{"hold:u:" + name, "rate:u:" + name, "spam:" + name,
                                                                    "heldq:" + name};
  for (const std::string& key : keys) {
    Status e = st->update(key, 0, [&](std::optional<std::string>& v) {
      if (!v) return;
      if (key.rfind("hold:", 0) == 0) was_held = true;
      if (key.rfind("heldq:", 0) == 0) {
        std::istringstream ids(*v);
        for (std::string id; ids >> id;) queue_ids.push_back(id);
      }
      v.reset();
    });
    if (!e.ok()) return e;
  }
  const std::string hold_key = keys[0];
  return drop_from_hold_index(*st, [&](const std::string& key) { return key == hold_key; });
}

Status OutboundGuard::holds(std::vector<HoldInfo>& out) const {
  out.clear();
  std::shared_ptr<StateStore> st;
  if (Status e = store(st); !e.ok()) return e;
  std::optional<std::string> index;
  if (Status e = st->get("holdindex", index); !e.ok()) return e;
  std::istringstream keys(index.value_or(""));
  std::vector<std::string> gone;  // holds that ended by themselves
  for (std::string key; std::getline(keys, key) && out.size() < 100000;) {
    std::optional<std::string> v;
    if (Status e = st->get(key, v); !e.ok()) return e;
    if (auto h = v ? parse_hold(*v) : std::nullopt) out.push_back(std::move(*h));
    else gone.push_back(key);
  }
  if (gone.empty()) return Status::Ok();
  // (A hold made again between the read above and this write drops out of
  // the list until its next hold; holding itself reads the hold key, never
  // the index.)
  return drop_from_hold_index(
      *st, [&](const std::string& key) { return std::find(gone.begin(), gone.end(), key) != gone.end(); });
}

namespace {

// Puts `key` in `path` atomically: written to a temporary file beside it,
// synced, then linked into place, so that a full or failing disk leaves no
// file at all (the next message tries again) instead of an empty key. The
// link fails with EEXIST when another process was first (its key is read
// then); `replace` renames over an existing (empty, broken) file instead.
Status write_site_key(const std::string& path, const std::string& key, bool replace, bool& lost_race) {
  std::string tmp = path + ".new." + std::to_string(::getpid()) + "." + key.substr(0, 8);
  FileDescriptor fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Status::IOError("outbound: cannot create the site key " + tmp + ": " + std::strerror(errno));
  int err = write_all(fd.get(), key + "\n");
  if (err == 0 && ::fsync(fd.get()) != 0) err = errno;
  if (err == 0) {
    int rc = replace ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
    if (rc != 0) err = errno;
  }
  ::unlink(tmp.c_str());  // after a rename: already gone
  lost_race = err == EEXIST;
  if (lost_race) return Status::Ok();
  if (err != 0) return Status::IOError("outbound: cannot write the site key " + path + ": " + std::strerror(err));
  return Status::Ok();
}

}  // namespace

Status OutboundGuard::site_key(std::string& out) const {
  std::lock_guard lock(mu_);
  const std::string& path = cfg_.site_key_file;
  for (int attempt = 0; key_.empty() && attempt < 2; ++attempt) {
    bool broken = false;  // an empty file: a write that never finished (before writes were atomic)
    std::ifstream in(path, std::ios::binary);
    if (in.is_open()) {
      std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
      if (!key.empty() && key.size() < 16)
        return Status::InvalidArgument("outbound: the site key in " + path + " is shorter than 16 characters");
      if (!key.empty()) {
        key_ = key;
        break;
      }
      broken = true;
    }
    // First use: a random key, readable by us only.
    unsigned char raw[32];
    if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw))
      return Status::IOError("outbound: no random bytes for a new site key");
    std::string key;
    for (unsigned char c : raw) key += fmt::format("{:02x}", c);
    bool lost_race = false;
    if (Status st = write_site_key(path, key, broken, lost_race); !st.ok()) return st;
    if (lost_race) continue;
    if (broken) log().warn("outbound: the site key file {} was empty; a new key was written", path);
    key_ = key;
  }
  if (key_.empty()) return Status::IOError("outbound: cannot read the site key " + path);
  out = key_;
  return Status::Ok();
}

Status OutboundGuard::tag_of(const std::string& account, std::string& tag) const {
  std::string key;
  if (Status e = site_key(key); !e.ok()) return e;
  GString_ hex(g_compute_hmac_for_data(G_CHECKSUM_SHA256, reinterpret_cast<const guchar*>(key.data()), key.size(),
                                       reinterpret_cast<const guchar*>(account.data()), account.size()));
  if (!hex) return Status::Internal("outbound: HMAC failed");
  tag.assign(hex.get(), 32);  // 128 bits
  return Status::Ok();
}

}  // namespace spamgate
