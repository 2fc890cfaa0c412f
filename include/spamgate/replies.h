// replies.h - the SMTP reply texts spamgate gives, in one place. The codes
// go with them: 550 5.7.1 for a refusal, 451 4.7.1 for a temporary one.
// Customers read these in bounces and support staff grep logs for them:
// change one only on purpose (tests and e2e suites name them).
#pragma once

#include <string_view>

namespace spamgate::reply_text {

// 451 4.7.1: a check failed and its failure policy is tempfail.
inline constexpr std::string_view kTempfail = "Temporary failure in spam scanning, please try again later";
// 451 4.7.1: the outbound guard holds the sender (at MAIL FROM or end of message).
inline constexpr std::string_view kHeld =
    "Sending from this account is paused after unusual activity; please contact support";
// 550 5.7.1 + the signature name (ClamAV, a trusted signature).
inline constexpr std::string_view kMalware = "Your email was rejected because it contains the ";
// 550 5.7.1: [clamav] on_unscannable = "reject".
inline constexpr std::string_view kUnscannable =
    "Your email was rejected because it could not be scanned for malware "
    "(archives nested too deeply, too many files or too long to scan)";
// 550 5.7.1 + the From domain: [auth] dmarc_reject_policy = "reject".
// reject_threshold: then the score and the support URL.
inline constexpr std::string_view kSpamRejected = "Your email was rejected as spam with a score of ";
inline constexpr std::string_view kDmarc = "Email rejected per DMARC policy for ";
// 550 5.7.1: more forged X-Spam-*/Authentication-Results fields than can be removed:
// kForgedMany1 + count + kForgedMany2.
inline constexpr std::string_view kForgedMany1 = "Your email was rejected because it carries ";
inline constexpr std::string_view kForgedMany2 = " X-Spam or Authentication-Results header fields";

}  // namespace spamgate::reply_text
