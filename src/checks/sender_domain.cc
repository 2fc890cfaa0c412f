// sender_domain.cc - SenderDomainCheck (see sender_domain.h).
#include "checks/sender_domain.h"

#include "checks/builtin.h"
#include "spamgate/message.h"
#include "util/text.h"
#include "message/addresses.h"

namespace spamgate {

std::vector<SymbolDef> SenderDomainCheck::symbols() {
  return {{"AUTH_USER_FROM_MISMATCH", 3.0, "Authenticated user sends with a From domain that is not theirs"}};
}

std::vector<std::string> SenderDomainCheck::allowed(const std::string& login) const {
  std::string l = ascii_lower(login);
  if (auto it = map_.find(l); it != map_.end()) return it->second;
  std::size_t at = l.rfind('@');
  if (at == std::string::npos) return {};
  if (auto it = map_.find(l.substr(at)); it != map_.end()) return it->second;
  return {l.substr(at + 1)};
}

Status SenderDomainCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& /*side*/) const {
  if (ctx.envelope.auth_user.empty()) return Status::Ok();
  std::vector<std::string> ok = allowed(ctx.envelope.auth_user);
  if (ok.empty()) return Status::Ok();
  const Header* from = ctx.message.first("From");
  std::vector<std::string> addrs = from ? header_addresses(from->decoded) : std::vector<std::string>{};
  for (const std::string& a : addrs) {
    std::size_t at = a.rfind('@');
    std::string dom = at == std::string::npos ? std::string() : ascii_lower(a.substr(at + 1));
    bool mine = false;
    for (const std::string& d : ok)
      mine = mine || dom == d || (dom.size() > d.size() && dom.compare(dom.size() - d.size(), d.size(), d) == 0 &&
                                  dom[dom.size() - d.size() - 1] == '.');
    if (!mine) {
      hits.emplace_back("AUTH_USER_FROM_MISMATCH", 1.0,
                        clip(ctx.envelope.auth_user, 80) + " sent as " + clip(dom.empty() ? a : dom, 80));
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace spamgate
