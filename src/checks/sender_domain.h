// sender_domain.h - AUTH_USER_FROM_MISMATCH: an authenticated user sends
// with a From domain that is not theirs.
//
// The domains a login may use: [outbound] sender_domains["login"], else
// sender_domains["@domain-of-login"], else the login's own domain (a login
// "alice@example.com" may use example.com and its subdomains). A login
// without '@' and without an entry is not checked. Mail without a login is
// never checked. Immutable; thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "spamgate/check.h"

namespace spamgate {

class SenderDomainCheck final : public Check {
 public:
  explicit SenderDomainCheck(std::map<std::string, std::vector<std::string>> map) : map_(std::move(map)) {}
  std::string_view name() const override { return "sender_domain"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();
  // The From domains `login` may use; empty: not checked.
  std::vector<std::string> allowed(const std::string& login) const;

 private:
  std::map<std::string, std::vector<std::string>> map_;
};

}  // namespace spamgate
