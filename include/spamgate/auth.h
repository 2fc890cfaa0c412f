// auth.h - sender authentication results of one message (SPF, DKIM, DMARC),
// filled by the checks in the order they run and rendered once, after all of
// them, as the Authentication-Results header field (RFC 8601).
//
// SpfCheck fills `spf`, DkimCheck `dkim`, DmarcCheck reads both and fills
// `dmarc`. A method that did not run keeps its empty result and is left out
// of the header. Plain data; owned by one scan; not shared between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spamgate {

// RFC 8601 result words: "pass" "fail" "softfail" "neutral" "none"
// "temperror" "permerror" ("policy" for DKIM); "" = the method did not run.
struct SpfAuth {
  std::string result;    // MAIL FROM identity (or HELO for the null sender)
  std::string mailfrom;  // smtp.mailfrom: the address (or postmaster@HELO) checked
  std::string domain;    // its domain, which DMARC aligns
  std::string helo_result;
  std::string helo;      // smtp.helo
};

struct DkimSignatureAuth {
  std::string result;    // pass fail neutral temperror permerror policy
  std::string domain;    // d=
  std::string selector;  // s=
  std::string b;         // first 8 characters of b= (header.b, tells signatures apart)
  std::string reason;    // why it failed, for the header comment and `explain`
};

struct DkimAuth {
  bool checked = false;                  // the check ran (no signature -> result none)
  std::vector<DkimSignatureAuth> sigs;   // one per DKIM-Signature, in header order
};

struct DmarcAuth {
  std::string result;       // pass fail none temperror permerror
  std::string from_domain;  // header.from
  std::string policy;       // policy.dmarc: none quarantine reject (the one that applies)
  std::string reason;       // why, for the header comment and `explain`
};

struct AuthResults {
  SpfAuth spf;
  DkimAuth dkim;
  DmarcAuth dmarc;
  bool any() const { return !spf.result.empty() || dkim.checked || !dmarc.result.empty(); }
};

// The value of an Authentication-Results field for `r` under `authserv_id`:
// "mx.example.net;\n\tspf=pass smtp.mailfrom=a@b.example;\n\tdkim=pass ...",
// one resinfo per method and per DKIM signature ("\n\t" folds, as in
// actions.h). Values that are not RFC 8601 tokens are quoted.
std::string authentication_results_value(std::string_view authserv_id, const AuthResults& r);

// The authserv-id an Authentication-Results value claims, lower-cased, with
// comments and white space skipped and a quoted-string unquoted ("" if
// there is none).
std::string authserv_id_of(std::string_view value);

}  // namespace spamgate
