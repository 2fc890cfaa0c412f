// clamav_engine.cc - ClamEngine on libclamav (see clamav_engine.h).
#include "checks/clamav_engine.h"

#include <clamav.h>

#include <mutex>

namespace spamgate {

void ClEngineFree::operator()(cl_engine* e) const {
  if (e != nullptr) cl_engine_free(e);
}

namespace {

// Every match of one scan (all-match mode calls this once per signature).
void on_match(int /*fd*/, const char* name, void* context) {
  auto* out = static_cast<std::vector<std::string>*>(context);
  if (out != nullptr && name != nullptr && out->size() < 100) out->emplace_back(name);
}

cl_error_t init_once() {
  static std::once_flag once;
  static cl_error_t rc = CL_SUCCESS;
  std::call_once(once, [] { rc = cl_init(CL_INIT_DEFAULT); });
  return rc;
}

}  // namespace

Result<std::shared_ptr<const ClamEngine>> ClamEngine::load(const std::string& dir) {
  if (cl_error_t rc = init_once(); rc != CL_SUCCESS)
    return Status::Internal(std::string("libclamav cannot start: ") + cl_strerror(rc));
  auto e = std::shared_ptr<ClamEngine>(new ClamEngine());
  e->engine_.reset(cl_engine_new());
  if (!e->engine_) return Status::Internal("libclamav: cannot allocate an engine");
  cl_error_t rc = cl_load(dir.c_str(), e->engine_.get(), &e->signatures_, CL_DB_STDOPT);
  if (rc != CL_SUCCESS) return Status::Corruption("signatures in " + dir + ": " + cl_strerror(rc));
  if (e->signatures_ == 0) return Status::NotFound("signatures in " + dir + ": no signature loaded");
  rc = cl_engine_compile(e->engine_.get());
  if (rc != CL_SUCCESS) return Status::Corruption("signatures in " + dir + ": compile: " + cl_strerror(rc));
  cl_engine_set_clcb_virus_found(e->engine_.get(), on_match);
  return std::shared_ptr<const ClamEngine>(std::move(e));
}

Result<std::vector<std::string>> ClamEngine::scan_fd(int fd) const {
  std::vector<std::string> names;
  cl_scan_options opts{};
  opts.general = CL_SCAN_GENERAL_ALLMATCHES;
  opts.parse = ~0u;  // every parser: archives, mail, PDF, ...
  const char* first = nullptr;
  unsigned long scanned = 0;
  cl_error_t rc = cl_scandesc_callback(fd, nullptr, &first, &scanned, engine_.get(), &opts, &names);
  if (rc != CL_CLEAN && rc != CL_VIRUS) return Status::Internal(std::string("libclamav: ") + cl_strerror(rc));
  if (rc == CL_VIRUS && names.empty() && first != nullptr) names.emplace_back(first);
  return names;
}

}  // namespace spamgate
