// recipients.h - per-domain and per-recipient settings: a provider's
// customers each with their own threshold, reject level, tagging,
// welcome/block lists or opt-out.
//
// The file (`recipient_settings` in spamgate.toml) is support staff's: one
// setting a line, '#' comments, read with the rules (a reload takes it,
// `spamgate lint` checks it):
//
//   # RECIPIENT        SETTING            VALUE
//   example.com        threshold          8
//   example.com        reject_threshold   15        (or off)
//   ceo@example.com    threshold          3
//   .example.com       subject_tag        off       (every subdomain of example.com)
//   quiet.example      tag                off
//   optout.example     skip
//   example.com        welcomelist_auth   *@partner.example
//   example.com        blocklist_from     *@pest.example
//
// A recipient's settings come from its address, then its domain, then
// ".parent" entries, nearest first: each setting from the most specific
// entry that sets it, the others from spamgate.toml; the lists of all of
// them count. How a message with several recipients is decided is in
// disposition.h (decide()). Immutable once parsed; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/diagnostic.h"

namespace spamgate {

struct AddressLists;
struct Config;

// One recipient's settings, merged.
struct RecipientSettings {
  std::int64_t threshold_tenths = 50;
  std::string threshold_text = "5";
  std::optional<std::int64_t> reject_tenths;  // none: never refused for the score
  std::string reject_text;
  bool tag = true;          // spam is flagged (X-Spam-Flag, X-Spam-Status: Yes); off: scored, never flagged
  bool subject_tag = true;  // and its Subject tagged
  bool skip = false;        // opted out: the message is not scanned for this recipient
  std::vector<const AddressLists*> lists;  // the entries' own lists, most specific first
  // The entries that gave these settings, most specific first
  // ("ceo@example.com example.com"); "" = spamgate.toml's alone.
  std::string source;
};

class RecipientTable {
 public:
  RecipientTable();
  ~RecipientTable();
  RecipientTable(RecipientTable&&) noexcept;
  RecipientTable& operator=(RecipientTable&&) noexcept;

  // Parses `text` (of `file`, for diagnostics) under the defaults of `c`
  // (threshold, reject_threshold). Every bad line is a Diagnostic; a
  // diagnostic in `warnings` is legal but worth a word (lint prints it).
  static RecipientTable parse(std::string_view text, const std::string& file, const Config& c,
                              std::vector<Diagnostic>& diags, std::vector<Diagnostic>& warnings);

  // `rcpt` as the MTA gave it ("<Ann@Example.COM>" or bare) under the
  // defaults of the config this table was parsed with.
  RecipientSettings resolve(std::string_view rcpt) const;
  bool empty() const;
  std::size_t size() const;  // recipients (addresses and domains) with settings

 private:
  struct Entry;
  std::map<std::string, Entry> entries_;
  RecipientSettings defaults_;
};

// The bare lower-case address of a recipient as the MTA gave it
// ("<Ann@Example.COM>" -> "ann@example.com"; bounded).
std::string recipient_key(std::string_view rcpt);

}  // namespace spamgate
