// session.h - one milter connection: envelope, headers and body of the
// message in progress, and what to do at end of message.
//
// Interface: the milter trampolines (milter.cc) call one method per libmilter
// callback; end_of_message() runs the same pipeline as `spamgate scan`
// (handle_message, pipeline.h) and applies the Disposition it returns
// through a HeaderSink: nothing is decided here. A Session belongs to one libmilter thread and
// needs no lock; per-use fields are reset at each MAIL FROM and on abort, "to
// avoid leakage from one use to another" (Postfix milter8.c). The snapshot is
// taken once per message, so a reload never changes rules mid-message.
// Memory: at most max_scan_bytes of a message is kept; the rest is counted.
// Header fields past limits.max_headers are counted (and forged ones
// removed) but neither kept, spooled nor given to DKIM, except up to 100
// Content-*/MIME-Version fields (they shape the MIME parse of the malware
// scan): a 35 MB block of tiny fields costs no memory.
// A signed message's body also streams through its DKIM verifier (hashed,
// not kept) up to [auth] dkim_max_body_bytes. With ClamAV on, a message
// longer than max_scan_bytes is spooled, up to [clamav] max_av_bytes, to an
// unlinked file in [clamav] spool_dir (disk, not memory); a spool failure
// (full or dead disk) fails the clamav check, whose policy is tempfail.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checks/dkim.h"
#include "spamgate/disposition.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "util/spool_file.h"

namespace spamgate {

// Where end_of_message() applies a Disposition: the milter protocol's
// encoder in production (filter.cc), a recorder in tests. Texts come as they
// are; the encoder makes them safe for the wire.
class HeaderSink {
 public:
  virtual ~HeaderSink() = default;
  virtual bool change(const std::string& name, int index, const std::string* value) = 0;  // value null = delete
  virtual bool add(const std::string& name, const std::string& value) = 0;
  virtual bool insert(const std::string& name, int index, const std::string& value) = 0;
  virtual bool reply(const std::string& rcode, const std::string& xcode, const std::string& text) = 0;
  // Puts the message into the MTA's hold queue (smfi_quarantine).
  virtual bool quarantine(const std::string& reason) = 0;
};

// What libmilter should answer at end of message.
using EomAction = MilterAnswer;

class Session {
 public:
  Session(const SnapshotHolder& holder, std::string conn_id) : holder_(holder), conn_id_(std::move(conn_id)) {}

  void connect(std::string_view client_name, std::string_view client_ip, bool local);
  void helo(std::string_view name) { env_.helo = clipped(name); }
  // Starts a message: takes the current snapshot and resets message state.
  // Returns the text of a 451 4.7.1 reply when the sender is held by the
  // outbound guard and its hold action is tempfail (never for local
  // submission, whose mail is put in the hold queue at end of message).
  // `queue_id`: Postfix's {i} at MAIL FROM (its log lines start with it).
  // `may_read_store`: false on the event loop (mail_from_may_block() said
  // no): the holds are then read at end of message only.
  std::optional<std::string> mail_from(std::string_view from, std::string_view auth_user,
                                       std::string_view queue_id = {}, bool may_read_store = true);
  // Whether mail_from() with this login may read the outbound guard's store
  // (Redis, LMDB): outgoing mail when a guard is on and holds answer 451.
  // Never throws (it runs on the event loop): true when in doubt.
  bool mail_from_may_block(std::string_view auth_user) const noexcept;
  void rcpt_to(std::string_view rcpt);
  // `value` as libmilter gives it (with its leading space when
  // SMFIP_HDR_LEADSPC was negotiated: set leading_space accordingly).
  void header(std::string_view name, std::string_view value);
  void end_of_headers();
  // Whether end_of_headers() may wait on DNS (DKIM key lookups: a signed
  // message with DKIM on).
  bool end_of_headers_may_block() const { return dkim_ != nullptr && signed_; }
  // Whether a body chunk of up to `max_chunk` bytes may be written to the
  // spool file (a disk, which may be slow or dead).
  bool body_may_block(std::size_t max_chunk) const;
  // Returns false once max_scan_bytes are kept and DKIM needs no more body
  // (the rest need not be sent).
  bool body(const unsigned char* data, std::size_t len);
  // The MTA agreed to skip the rest of the body (SMFIS_SKIP was answered).
  void body_skipped() { body_skipped_ = true; }
  EomAction end_of_message(std::string_view queue_id, HeaderSink& sink);
  // The Disposition the last end_of_message() applied (tests compare it with `scan`).
  const Disposition& last_disposition() const { return last_; }
  void abort() { reset_message(); }

  // Whether Postfix keeps the space after the colon for us (SMFIP_HDR_LEADSPC).
  void set_leading_space(bool on) { leading_space_ = on; }
  // The protocol flags (SMFIP_*) agreed with the MTA.
  void set_protocol_flags(unsigned long f) { protocol_flags_ = f; }
  unsigned long protocol_flags() const { return protocol_flags_; }
  bool leading_space() const { return leading_space_; }
  const std::string& conn_id() const { return conn_id_; }
  SenderClass sender_class() const;
  bool in_message() const { return snap_ != nullptr; }
  // The rules this message is scanned with (nullptr outside a message).
  const Snapshot* snapshot() const { return snap_.get(); }
  // Message bytes every session holds now (the memory watch reports it).
  static std::size_t buffered_bytes();
  ~Session() { reset_message(); }

 private:
  static std::string clipped(std::string_view s) { return std::string(s.substr(0, 1000)); }
  void append(std::string_view bytes, bool keep = true);
  void spool(std::size_t start, std::string_view bytes);
  std::size_t av_cap() const;
  void reset_message();
  std::string render_value(const std::string& v) const;
  // Applies `d` through `sink` (edits, quarantine, reply), logging what the
  // MTA refused. Returns whether the MTA took the quarantine.
  bool apply(const Disposition& d, HeaderSink& sink, const std::string& label);

  const SnapshotHolder& holder_;
  std::string conn_id_;
  bool leading_space_ = false;
  unsigned long protocol_flags_ = 0;
  bool local_ = false;
  Envelope env_;  // connection part survives messages; message part reset
  Disposition last_;

  // per message
  std::shared_ptr<const Snapshot> snap_;
  std::string buf_;                       // first max_scan_bytes of the message
  std::size_t total_ = 0;                 // bytes of the whole message seen
  bool body_skipped_ = false;             // the MTA was told to skip the rest of the body
  HeaderCensus census_;                   // fields to remove (forged X-Spam-*, A-R, tag), counted
  std::size_t header_fields_ = 0;         // header fields seen
  std::size_t late_mime_fields_ = 0;      // Content-*/MIME-Version fields kept past max_headers
  std::size_t kept_ = 0;                  // bytes of the message kept (buffer + spool): total_ less dropped fields
  std::unique_ptr<DkimVerifier> dkim_;    // fed as the message streams in; null when DKIM is off
  bool signed_ = false;                   // a DKIM-Signature field was fed to dkim_
  // DNS budget ([dns] budget_ms) spent before end of message (DKIM key
  // lookups at end of headers): scan_message gets only the rest.
  std::chrono::steady_clock::duration dns_spent_{};
  FileDescriptor spool_;                  // unlinked file with the first max_av_bytes (long messages)
  std::size_t spooled_ = 0;               // bytes written to it
  std::string spool_error_;               // why spooling failed ("" = fine)
};

}  // namespace spamgate
