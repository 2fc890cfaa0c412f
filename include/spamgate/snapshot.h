// snapshot.h - configuration, symbol scores and checks, frozen together.
//
// A Snapshot is built once (config/load.h) from the config file, every
// rules/*.cf in lexical order and then the admin's local rules file, and is
// immutable afterwards: shared as shared_ptr<const Snapshot>, safe to read from
// any number of threads. A message is scanned with the snapshot it started
// with, so a reload never changes the rules mid-message.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spamgate/bayes.h"
#include "spamgate/check.h"
#include "spamgate/limits.h"
#include "spamgate/outbound.h"
#include "spamgate/resolver.h"
#include "spamgate/status.h"
#include "spamgate/symbols.h"

namespace spamgate {

class HistoryWriter;
class RecipientTable;

// What the milter does with a class of senders.
enum class SenderPolicy { kTag, kLog, kSkip };  // scan and tag / scan and only log / skip
// What a failing check does to its message.
enum class FailureAction { kContinue, kTempfail, kAccept };

// [milter] in spamgate.toml.
struct MilterConfig {
  std::string socket = "inet:8895@127.0.0.1";  // inet:PORT@HOST, inet6:PORT@HOST or unix:PATH
  int timeout_seconds = 60;        // an idle MTA connection is closed after this long
  int drain_seconds = 20;          // SIGTERM waits this long for sessions in flight
  int max_connections = 1000;      // more open MTA connections get 4xx at connect (0: no cap)
  int workers = 0;                 // threads that run the scan; 0: 8 per core
  std::vector<std::string> trusted_networks;  // CIDRs whose mail is "trusted" (outgoing)
  SenderPolicy inbound = SenderPolicy::kTag;
  SenderPolicy authenticated = SenderPolicy::kLog;  // {auth_authen} set
  SenderPolicy trusted = SenderPolicy::kLog;
  FailureAction on_check_error = FailureAction::kContinue;    // default for every check
  std::map<std::string, FailureAction> on_check_error_by_check;  // check name -> action
  FailureAction on_internal_error = FailureAction::kAccept;   // accept or tempfail
};

// One DNS blocklist zone ([[dnsbl]] in spamgate.toml), checked for the client IP.
struct DnsblZone {
  std::string zone;    // e.g. "zen.spamhaus.org"
  std::string symbol;  // emitted for any listing, e.g. "RCVD_IN_ZEN"
  double score = 1.0;  // default score of its symbols (rules files may override)
  std::map<std::string, std::string> codes;  // answer (127.0.0.x) -> a more specific symbol
};

// [auth] in spamgate.toml: SPF, DKIM, DMARC and Authentication-Results.
struct AuthConfig {
  bool spf = true;    // each check can be turned off; then it emits no symbol
  bool dkim = true;
  bool dmarc = true;
  std::string authserv_id;  // "" = hostname; gateway nodes that share one name it here
  bool dmarc_reject = false;  // a p=reject failure rejects (550) instead of only scoring
  std::size_t dkim_max_body_bytes = 64u << 20;  // body hashed for DKIM; past it: neutral
};

// [clamav] in spamgate.toml: in-process malware scanning with libclamav.
struct ClamavConfig {
  bool enabled = true;
  // Our own database (conf/signatures): trusted, and its matches are named
  // without libclamav's ".UNOFFICIAL" suffix in the reply.
  std::string own_signatures;
  // More signature directories, e.g. freshclam's /var/lib/clamav: signed
  // CVD/CLD files there are trusted, every other file is third-party.
  std::vector<std::string> signature_dirs;
  // Third-party database files (base names, e.g. "mycompany.ndb") trusted to reject.
  std::vector<std::string> trusted_files;
  // Per-signature "ignore|score|reject NAME" lines support staff edit; a
  // missing file is not an error.
  std::string policy_file;
  // "parts": the decoded MIME parts of our one parse (fast, no temp files);
  // "raw": the raw message through libclamav's own mail parser. Messages
  // longer than max_scan_bytes are always scanned raw from the spool file.
  bool scan_raw = false;
  std::size_t max_av_bytes = 25u << 20;  // bytes of a message kept for the scan
  std::string spool_dir = "/var/tmp";    // where they are spooled (unlinked file)
  std::string temp_dir;                  // libclamav's per-scan work files; "" = spool_dir
  std::uint64_t max_filesize = 25u << 20;   // libclamav: largest file (part, archive member) scanned
  std::uint64_t max_scansize = 100u << 20;  // libclamav: bytes scanned per message, archives unpacked
  std::uint32_t max_recursion = 16;         // libclamav: archive / container depth
  std::uint32_t max_files = 10000;          // libclamav: files in archives per message
  std::uint32_t max_scantime_ms = 10000;    // libclamav: time per message (then the check fails)
  // Known-good mail a new engine must not flag before it replaces the old one.
  std::vector<std::string> canary_dirs;
  int canary_max_flagged = 0;  // refuse an engine that flags more canary messages than this
  int watch_seconds = 60;      // poll the signature files for changes; 0 = SIGUSR1 only
  // Messages longer than max_scan_bytes scanned at the same time (libclamav
  // decodes their attachments in memory: ~10-16 MB each at 25 MB); more wait
  // up to large_scan_wait_ms, then the check fails (policy: tempfail). 0 = no cap.
  int max_parallel_large_scans = 8;
  int large_scan_wait_ms = 30000;
  // A message libclamav could not scan to the end because of its structure
  // (nesting past max_recursion, more than max_files members: archive bombs,
  // or malware buried below the limit): kReject (550 5.7.1,
  // CLAMAV_UNSCANNABLE; a retry would hit the same limit), kTempfail (451:
  // the check fails) or kScore (delivered with CLAMAV_UNSCANNABLE's score).
  // Past max_scantime_ms the check fails (on_error: tempfail), as that may be
  // the machine's load; kScore lets it through scored. Size limits
  // (max_av_bytes, max_filesize, max_scansize) only score
  // CLAMAV_NOT_FULLY_SCANNED: large mail is normal.
  enum class Unscannable { kReject, kTempfail, kScore };
  Unscannable on_unscannable = Unscannable::kReject;
};

// [metrics]: the Prometheus endpoint (loopback only).
struct MetricsConfig {
  std::string listen;  // "127.0.0.1:9795"; "" = off
};

// [memory]: the memory watch.
struct MemoryConfig {
  int log_seconds = 60;           // resident memory logged (debug) this often; 0 = never
  std::size_t warn_bytes = 1u << 30;  // above it: a warning naming the largest consumers
};

// [history]: the verdict history (history.h).
struct HistoryConfig {
  bool enabled = true;
  std::string path;  // the LMDB directory, created on first use; "" = "history" beside [bayes] path
  int retention_days = 30;                         // records older than this are removed
  std::size_t max_bytes = std::size_t{1} << 30;    // the store's largest size; the oldest go first near it
  std::size_t queue = 10000;                       // records waiting to be written; past it they are dropped
  // How X-Spam-Technical-Details carries the record's reference: "url" (the
  // support URL gets ?ref=ID), "line" (a last line "Reference: ID"), "off".
  std::string reference = "url";
  // "lmdb" (path above, one node) or "redis": one history for several
  // nodes, at `redis` ("" = [bayes] redis) under keys `redis_prefix`:*.
  std::string store = "lmdb";
  std::string redis;
  std::string redis_prefix = "spamgate:history";
  int redis_timeout_ms = 1000;
  bool operator==(const HistoryConfig&) const = default;
};

// [console]: the support console (web pages; src/console/). It runs when
// users_file is set. A change needs a restart.
struct ConsoleConfig {
  std::string listen = "127.0.0.1:9796";  // loopback unless a certificate is set
  std::string users_file;   // "name:crypt(3) hash" lines (spamgate passwd); "" = no console
  std::string certificate;  // PEM with the key and the certificate: HTTPS; "" = plain HTTP
  std::string audit_log;    // who changed what, JSON lines; "" = "console-audit.log" beside [bayes] path
  int session_minutes = 60;  // a session idle this long ends
  bool operator==(const ConsoleConfig&) const = default;
};

// Every option has a default; conf/spamgate.toml documents each one.
struct Config {
  std::string path;                    // the file this was read from; "" = built-in defaults
  std::int64_t threshold_tenths = 50;  // spam when score > threshold (kept in tenths)
  std::string threshold_text = "5";    // the threshold as printed: shortest form
  // Inbound mail scoring greater than this is refused (550 5.7.1) instead
  // of tagged; unset = never. Greater than the threshold.
  std::optional<std::int64_t> reject_threshold_tenths;
  std::string reject_threshold_text;
  std::string subject_tag = "[SPAM] -";  // Subject becomes "<tag> <original>"
  bool tests_with_scores = false;  // X-Spam-Status lists tests=NAME=2.2,... (SpamAssassin's _TESTSSCORES_)
  std::string service_name = "Gateway Filtering Service";
  std::string hostname;                // "" in the file = this machine's FQDN
  std::string support_url = "https://support.example.com/spam";
  // Rule directories, each read as every *.cf in it in lexical order. The
  // first is ours; later ones are third-party sets read as SpamAssassin reads
  // them (Debian's /usr/share/spamassassin, sa-update's directory).
  std::vector<std::string> rules_dirs;
  std::string local_rules;             // read last; a missing file is not an error
  // Per-domain and per-recipient settings (recipients.h), read with the
  // rules; "" or a missing file = none.
  std::string recipient_settings;
  // Known-good mail every new set of rules must pass: a load (start or
  // reload) whose rules score one of these messages over the threshold is
  // refused, naming the message and the rules that hit it; empty = no check.
  std::vector<std::string> rules_canary_dirs;
  int rules_watch_seconds = 60;  // poll the rule files for changes (sa-update); 0 = SIGUSR1 only
  // Compiled Hyperscan databases of the rules, kept between starts; "" = none
  // (then every start compiles them, and long rules are prefiltered on a part).
  std::string rules_cache_dir;
  Limits limits;
  std::string log_level = "info";      // trace debug info warn error critical off
  std::string log_target = "stderr";   // stderr | stdout | syslog | a file path
  MilterConfig milter;
  DnsConfig dns;
  std::vector<DnsblZone> dnsbl;  // client IP blocklists
  std::vector<DnsblZone> uribl;  // link domain blocklists ([[uribl]], same shape)
  AuthConfig auth;
  ClamavConfig clamav;
  BayesConfig bayes;
  OutboundConfig outbound;
  MetricsConfig metrics;
  MemoryConfig memory;
  HistoryConfig history;
  ConsoleConfig console;
};

class DkimLibrary;
class ClamEngine;

struct Snapshot {
  Config config;
  std::shared_ptr<Resolver> resolver;  // null when network checks are off
  std::shared_ptr<const DkimLibrary> dkim;  // null when DKIM is off (no network, or [auth] dkim = false)
  // The compiled signature engine (null when [clamav] enabled = false). A
  // reload keeps the previous one when no signature file changed, or when the
  // new one fails to load or flags canary mail.
  std::shared_ptr<const ClamEngine> clamav;
  // Outbound limits and holds (null when [outbound] enabled = false); the
  // overrides file is read with the rules, so a reload takes its changes.
  std::shared_ptr<const OutboundGuard> outbound;
  // The milter's verdict history writer (null for the other commands, or
  // when [history] is off or its store cannot open); a reload with the same
  // [history] keeps it.
  std::shared_ptr<HistoryWriter> history;
  // Per-recipient settings (never null; empty without a file).
  std::shared_ptr<const RecipientTable> recipients;
  SymbolTable symbols;
  std::vector<std::unique_ptr<const Check>> checks;  // run in this order
  std::vector<std::string> rule_files;                // as loaded, for logs
  std::string rules_fingerprint;                      // rules_fingerprint_of() when loaded (the watch compares)
  std::size_t rule_count = 0;
  // Rules that load but deserve a look (not prefiltered, nested repeats that
  // can backtrack, a misspelt header name): `lint` prints them, the milter
  // logs them at start and reload.
  std::vector<Diagnostic> warnings;
  // Rule-file lines read and not used, by kind (lint --verbose lists them).
  std::map<std::string, SkipCount> skipped;
};

// The current snapshot, swapped atomically on reload. A reader keeps the
// shared_ptr it got for as long as it needs it (a whole message).
class SnapshotHolder {
 public:
  explicit SnapshotHolder(std::shared_ptr<const Snapshot> s) : p_(std::move(s)) {}
  std::shared_ptr<const Snapshot> get() const { return p_.load(std::memory_order_acquire); }
  void set(std::shared_ptr<const Snapshot> s) { p_.store(std::move(s), std::memory_order_release); }

 private:
  std::atomic<std::shared_ptr<const Snapshot>> p_;
};

}  // namespace spamgate
