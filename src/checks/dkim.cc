// dkim.cc - DkimLibrary, DkimVerifier and DkimCheck (see dkim.h).
//
// libopendkim asks for keys through three hooks: query_start writes a DNS
// reply into its buffer, waitreply says how long it is, cancel frees the
// query. Our Resolver answers synchronously within the message's deadline
// (thread_local, as libopendkim gives the hooks no per-message context), and
// query_start encodes its answer as the wire-format reply libopendkim parses.
#include "checks/dkim.h"

#include <arpa/nameser.h>

#include <cstring>

// dkim.h is C99 and names C's _Bool; C++ spells it bool (same ABI).
#define _Bool bool
extern "C" {
#include <opendkim/dkim.h>
}
#undef _Bool

#include "checks/builtin.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "util/psl.h"
#include "util/text.h"
#include "message/addresses.h"

namespace spamgate {

void DkimLibClose::operator()(dkim_lib* p) const {
  if (p != nullptr) dkim_close(p);
}
void DkimFree::operator()(dkim* p) const {
  if (p != nullptr) dkim_free(p);
}

namespace {

// The deadline of the message whose keys this thread is looking up.
thread_local Deadline t_deadline;

struct Query {
  std::size_t len = 0;
  int status = DKIM_DNS_ERROR;
};

void put16(std::string& out, unsigned v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

// A DNS reply for `name` TXT as a resolver would send it: header, question,
// then one TXT record per answer (its text split into <=255-byte strings).
// Empty if `name` is not a valid domain name.
std::string encode_reply(std::string_view name, const DnsAnswer& a) {
  std::string out;
  put16(out, 0);                                   // id
  unsigned rcode = a.rcode == DnsAnswer::Rcode::kNxDomain ? 3 : 0;
  put16(out, 0x8180 | rcode);                      // QR RD RA, rcode
  put16(out, 1);                                   // qdcount
  put16(out, a.ok() ? static_cast<unsigned>(a.records.size()) : 0);
  put16(out, 0);
  put16(out, 0);
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::size_t len = dot - start;
    if (len == 0 || len > 63) return {};
    out.push_back(static_cast<char>(len));
    out.append(name.substr(start, len));
    start = dot + 1;
  }
  out.push_back('\0');
  if (out.size() > 12 + 255) return {};
  put16(out, ns_t_txt);
  put16(out, ns_c_in);
  if (!a.ok()) return out;
  for (const std::string& rec : a.records) {
    std::string rdata;
    for (std::size_t i = 0; i < rec.size() || i == 0; i += 255) {
      std::string_view part = std::string_view(rec).substr(i, 255);
      rdata.push_back(static_cast<char>(part.size()));
      rdata.append(part);
      if (rec.empty()) break;
    }
    if (rdata.size() > 65535) return {};
    put16(out, 0xc00c);  // the question's name
    put16(out, ns_t_txt);
    put16(out, ns_c_in);
    put16(out, (a.ttl >> 16) & 0xffff);
    put16(out, a.ttl & 0xffff);
    put16(out, static_cast<unsigned>(rdata.size()));
    out += rdata;
  }
  return out;
}

int query_start(void* srv, int type, unsigned char* query, unsigned char* buf, size_t buflen, void** qh) {
  if (srv == nullptr || query == nullptr || buf == nullptr || qh == nullptr || type != ns_t_txt) return DKIM_DNS_INVALID;
  auto* resolver = static_cast<Resolver*>(srv);
  std::string_view name(reinterpret_cast<const char*>(query));
  auto q = std::make_unique<Query>();
  DnsAnswer a = resolver->lookup(name, DnsType::kTxt, t_deadline);
  if (a.ok() || a.rcode == DnsAnswer::Rcode::kNxDomain || a.rcode == DnsAnswer::Rcode::kNoData) {
    std::string reply = encode_reply(name, a);
    if (!reply.empty() && reply.size() <= buflen) {
      std::memcpy(buf, reply.data(), reply.size());
      q->len = reply.size();
      q->status = DKIM_DNS_SUCCESS;
    }
  } else if (a.rcode == DnsAnswer::Rcode::kTimeout) {
    q->status = DKIM_DNS_EXPIRED;
  }
  *qh = q.release();
  return DKIM_DNS_SUCCESS;
}

int query_cancel(void* /*srv*/, void* qh) {
  delete static_cast<Query*>(qh);
  return DKIM_DNS_SUCCESS;
}

int query_waitreply(void* /*srv*/, void* qh, struct timeval* /*to*/, size_t* bytes, int* error, int* dnssec) {
  const auto* q = static_cast<const Query*>(qh);
  if (bytes != nullptr) *bytes = q->len;
  if (error != nullptr) *error = 0;
  if (dnssec != nullptr) *dnssec = DKIM_DNSSEC_UNKNOWN;
  return q->status;
}

// Signatures verified per message: each costs a key lookup and a hash, and a
// hostile message may carry hundreds. Those past it are ignored (not reported).
constexpr int kMaxSignatures = 10;

DKIM_CBSTAT prescreen(DKIM* /*dkim*/, DKIM_SIGINFO** sigs, int nsigs) {
  for (int i = kMaxSignatures; i < nsigs; ++i) dkim_sig_ignore(sigs[i]);
  return DKIM_CBSTAT_CONTINUE;
}

std::string text_of(const unsigned char* s) { return s != nullptr ? reinterpret_cast<const char*>(s) : ""; }

// RFC 8601 result and reason of one processed signature.
DkimSignatureAuth result_of(DKIM_SIGINFO* sig) {
  DkimSignatureAuth r;
  r.domain = ascii_lower(text_of(dkim_sig_getdomain(sig)));
  r.selector = text_of(dkim_sig_getselector(sig));
  r.b = text_of(dkim_sig_gettagvalue(sig, false, reinterpret_cast<u_char*>(const_cast<char*>("b")))).substr(0, 8);
  unsigned flags = dkim_sig_getflags(sig);
  int bh = dkim_sig_getbh(sig);
  int err = dkim_sig_geterror(sig);
  if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH) {
    r.result = "pass";
    return r;
  }
  if (bh == DKIM_SIGBH_MISMATCH) {
    r.result = "fail";
    r.reason = "body hash mismatch: the body was changed after signing";
    return r;
  }
  switch (err) {
    case DKIM_SIGERROR_BADSIG:
    case DKIM_SIGERROR_OK:  // processed, not passed, no error: the signature did not verify
      r.result = "fail";
      r.reason = "signature did not verify: signed header fields were changed";
      break;
    case DKIM_SIGERROR_EXPIRED:
    case DKIM_SIGERROR_FUTURE:
      r.result = "fail";
      break;
    case DKIM_SIGERROR_KEYFAIL:
      r.result = "temperror";
      r.reason = "key DNS query failed";
      break;
    default:
      r.result = "permerror";
      break;
  }
  if (r.reason.empty()) {
    const char* s = dkim_sig_geterrorstr(err);
    r.reason = s != nullptr ? s : "unknown error";
  }
  return r;
}

}  // namespace

Result<std::shared_ptr<const DkimLibrary>> DkimLibrary::create(std::shared_ptr<Resolver> resolver) {
  auto out = std::shared_ptr<DkimLibrary>(new DkimLibrary());
  out->lib_.reset(dkim_init(nullptr, nullptr));
  if (!out->lib_ || !resolver) {
    return Status::Internal("libopendkim could not be initialised");
  }
  out->resolver_ = std::move(resolver);
  DKIM_LIB* lib = out->lib_.get();
  // FIXCRLF: bare LF (message files) is canonicalised as CRLF; BADSIGHANDLES:
  // a malformed signature is reported (permerror) rather than dropped.
  unsigned flags = DKIM_LIBFLAGS_FIXCRLF | DKIM_LIBFLAGS_BADSIGHANDLES;
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK) {
    return Status::Internal("libopendkim refused its options");
  }
  dkim_set_prescreen(lib, prescreen);
  // Our hooks replace libopendkim's resolver; no init/close of its own.
  dkim_dns_set_init(lib, nullptr);
  dkim_dns_set_close(lib, nullptr);
  dkim_dns_set_query_service(lib, out->resolver_.get());
  dkim_dns_set_query_start(lib, query_start);
  dkim_dns_set_query_cancel(lib, query_cancel);
  dkim_dns_set_query_waitreply(lib, query_waitreply);
  return std::shared_ptr<const DkimLibrary>(std::move(out));
}

DkimVerifier::DkimVerifier(std::shared_ptr<const DkimLibrary> lib, std::size_t max_body_bytes)
    : lib_(std::move(lib)), max_body_bytes_(max_body_bytes) {
  DKIM_STAT st = DKIM_STAT_OK;
  handle_.reset(dkim_verify(lib_->lib(), reinterpret_cast<const unsigned char*>("spamgate"), nullptr, &st));
  if (!handle_) {
    state_ = State::kError;
    error_ = "libopendkim could not start a verification";
  }
}

void DkimVerifier::header(std::string_view field) {
  if (state_ != State::kHeaders) return;
  std::string copy(field);  // libopendkim takes a non-const buffer
  DKIM_STAT st = dkim_header(handle_.get(), reinterpret_cast<u_char*>(copy.data()), copy.size());
  if (st != DKIM_STAT_OK) {
    const char* e = dkim_geterror(handle_.get());
    error_ = std::string("header rejected: ") + (e != nullptr ? e : dkim_getresultstr(st));
    state_ = State::kError;
  }
}

void DkimVerifier::end_of_headers(Deadline deadline) {
  if (state_ != State::kHeaders) return;
  t_deadline = deadline;
  DKIM_STAT st = dkim_eoh(handle_.get());
  if (st == DKIM_STAT_NOSIG) {
    state_ = State::kNoSignature;
  } else if (st == DKIM_STAT_OK) {
    state_ = State::kBody;
  } else {
    const char* e = dkim_geterror(handle_.get());
    error_ = e != nullptr && *e != '\0' ? e : dkim_getresultstr(st);
    state_ = State::kError;
  }
}

void DkimVerifier::body(std::string_view chunk) {
  if (!wants_body()) return;
  if (body_bytes_ + chunk.size() > max_body_bytes_) {
    too_big_ = true;
    return;
  }
  body_bytes_ += chunk.size();
  std::string copy(chunk);
  DKIM_STAT st = dkim_body(handle_.get(), reinterpret_cast<u_char*>(copy.data()), copy.size());
  if (st != DKIM_STAT_OK) {
    error_ = dkim_getresultstr(st);
    state_ = State::kError;
  }
}

void DkimVerifier::feed_message(std::string_view bytes, Deadline deadline) {
  HeaderBlock hb = split_header_block(bytes, static_cast<std::size_t>(-1));
  for (const RawField& f : hb.fields) {
    std::string_view text = bytes.substr(f.offset, f.length);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    header(text);
  }
  end_of_headers(deadline);
  body(bytes.substr(std::min(hb.body_offset, bytes.size())));
}

DkimAuth DkimVerifier::finish(Deadline deadline) {
  DkimAuth out;
  out.checked = true;
  State was = state_;
  state_ = State::kDone;
  if (was == State::kNoSignature || was == State::kDone || !handle_) return out;
  t_deadline = deadline;
  if (was == State::kBody && !too_big_) dkim_eom(handle_.get(), nullptr);
  DKIM_SIGINFO** sigs = nullptr;
  int nsigs = 0;
  if (dkim_getsiglist(handle_.get(), &sigs, &nsigs) != DKIM_STAT_OK || sigs == nullptr) nsigs = 0;
  for (int i = 0; i < nsigs && i < kMaxSignatures; ++i) {
    if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) != 0) continue;
    DkimSignatureAuth r;
    if (too_big_) {
      r.domain = ascii_lower(text_of(dkim_sig_getdomain(sigs[i])));
      r.selector = text_of(dkim_sig_getselector(sigs[i]));
      r.result = "neutral";
      r.reason = "body larger than " + std::to_string(max_body_bytes_) + " bytes, not verified";
    } else if (was == State::kError) {
      r = result_of(sigs[i]);
      if (r.result == "pass" || r.result == "fail") r.result = "permerror";
      r.reason = error_;
    } else {
      r = result_of(sigs[i]);
    }
    out.sigs.push_back(std::move(r));
  }
  if (was == State::kError && out.sigs.empty()) out.sigs.push_back({"permerror", "", "", "", error_});
  handle_.reset();
  return out;
}


bool relaxed_aligned(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return false;
  if (ascii_lower(a) == ascii_lower(b)) return true;
  std::string ra = registrable_domain(a);
  return !ra.empty() && ra == registrable_domain(b);
}

std::vector<SymbolDef> DkimCheck::symbols() {
  return {
      {"DKIM_VALID", 0.0, "DKIM: at least one valid signature"},
      {"DKIM_VALID_AU", 0.0, "DKIM: a valid signature from the author's (From) domain"},
      {"DKIM_INVALID", 0.0, "DKIM: a signature that failed to verify (message changed, or forged)"},
      {"DKIM_NONE", 0.0, "DKIM: the message is not signed"},
      {"DKIM_TEMPERROR", 0.0, "DKIM: a signing key could not be fetched (DNS failure)"},
  };
}

Status DkimCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const {
  DkimAuth auth;
  if (ctx.dkim != nullptr) {
    auth = ctx.dkim->finish(ctx.dns_deadline);
  } else {
    DkimVerifier v(lib_, max_body_bytes_);
    v.feed_message(ctx.bytes, ctx.dns_deadline);
    auth = v.finish(ctx.dns_deadline);
  }
  std::string author = from_domain(ctx.message);
  bool valid = false, valid_au = false, invalid = false, temperror = false;
  std::string valid_detail, au_detail, invalid_detail, temp_detail;
  for (const DkimSignatureAuth& s : auth.sigs) {
    std::string who = "d=" + s.domain + " s=" + s.selector;
    if (s.result == "pass") {
      if (!valid) valid_detail = who;
      valid = true;
      if (!valid_au && relaxed_aligned(s.domain, author)) {
        valid_au = true;
        au_detail = who + " (From: " + author + ")";
      }
    } else if (s.result == "temperror") {
      if (!temperror) temp_detail = who + ": " + s.reason;
      temperror = true;
    } else if (s.result != "neutral") {
      if (!invalid) invalid_detail = who + ": " + s.result + ", " + s.reason;
      invalid = true;
    }
  }
  if (auth.sigs.empty()) hits.push_back({"DKIM_NONE", 1.0, "no DKIM-Signature"});
  if (valid) hits.push_back({"DKIM_VALID", 1.0, clip(valid_detail, 200)});
  if (valid_au) hits.push_back({"DKIM_VALID_AU", 1.0, clip(au_detail, 200)});
  if (invalid) hits.push_back({"DKIM_INVALID", 1.0, clip(invalid_detail, 200)});
  if (temperror) hits.push_back({"DKIM_TEMPERROR", 1.0, clip(temp_detail, 200)});
  side.dkim = std::move(auth);
  return Status::Ok();
}

}  // namespace spamgate
