// arf.h - reading feedback-loop abuse reports (ARF, RFC 5965).
//
// A report is multipart/report; report-type=feedback-report with a
// human-readable part, a message/feedback-report part (Feedback-Type,
// User-Agent, Version, Original-Mail-From, Source-IP, Arrival-Date ...) and
// the original message: message/rfc822 (whole) or text/rfc822-headers (its
// header only). Parsed with GMime; never throws; bounded by the caller's
// read limit. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "spamgate/status.h"

namespace spamgate {

struct FeedbackReport {
  std::string feedback_type;       // "abuse", "fraud", "not-spam" ... (lower-case)
  std::string user_agent;
  std::string original_mail_from;
  std::string source_ip;
  std::string original;            // the enclosed message (or only its header block)
  bool headers_only = false;       // text/rfc822-headers: nothing to learn from
};

// InvalidArgument (saying what is missing) when `bytes` is not a feedback report.
Status parse_feedback_report(std::string_view bytes, FeedbackReport& out);

}  // namespace spamgate
