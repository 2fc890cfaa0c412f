// fuzz_milter_session.cc - libFuzzer target: a fuzzed sequence of milter
// callbacks driving a Session the way libmilter drives it (connect, helo,
// MAIL FROM, RCPT TO, header, end of headers, body chunks, end of message,
// abort), in any order, with fuzzed arguments and an MTA that may refuse
// header edits. Input: FuzzedDataProvider; the last two bytes say which
// edits the MTA refuses, then one byte per callback (from the end) picks it,
// its arguments are strings from the front. Build as fuzz_message.cc says.
//
// Snapshot: the golden tests' small rule set (tests/data/rules), no network
// checks (no resolver: nothing is looked up), no ClamAV, Bayes off; the
// outbound guard on with small limits so holds happen, its state in LMDB
// under /dev/shm/spamgate-fuzz-session-PID (removed by the next run once
// that process is gone).
// Checked: nothing crashes or leaks, a session is out of its message after
// end of message and abort, and every byte a session kept is given back when
// it is destroyed (Session::buffered_bytes() returns to 0).
#include <fuzzer/FuzzedDataProvider.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/load.h"
#include "milter/session.h"
#include "spamgate/pipeline.h"

namespace {

// The MTA: refuses the n-th edit when bit n % 16 of `refuse` is set.
class FuzzSink final : public spamgate::HeaderSink {
 public:
  explicit FuzzSink(std::uint16_t refuse) : refuse_(refuse) {}
  bool change(const std::string&, int, const std::string*) override { return ok(); }
  bool add(const std::string&, const std::string&) override { return ok(); }
  bool insert(const std::string&, int, const std::string&) override { return ok(); }
  bool reply(const std::string&, const std::string&, const std::string&) override { return ok(); }
  bool quarantine(const std::string&) override { return ok(); }

 private:
  bool ok() { return (refuse_ >> (n_++ % 16) & 1) == 0; }
  std::uint16_t refuse_;
  unsigned n_ = 0;
};

// Directories of earlier runs whose process is gone (libFuzzer ends with
// _Exit, so nothing runs at exit).
void remove_stale_dirs(const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + prefix.size()));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) std::filesystem::remove_all(e.path(), ec);
  }
}

struct Setup {
  std::unique_ptr<spamgate::SnapshotHolder> holder;
  Setup() {
    remove_stale_dirs("spamgate-fuzz-session-");
    std::filesystem::path dir = "/dev/shm/spamgate-fuzz-session-" + std::to_string(getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "spamgate.toml")
        << "rules_dir = \"" SPAMGATE_SOURCE_DIR "/tests/data/rules\"\n"
           "local_rules = \"\"\nhostname = \"mx1.gateway.example\"\nservice_name = \"Fuzz Gateway\"\n"
           "support_url = \"https://support.example.com/spam\"\nthreshold = 5\nmax_scan_bytes = 4096\n"
           "[log]\nlevel = \"off\"\n"
           "[milter]\ntrusted_networks = [\"10.0.0.0/8\", \"2001:db8::/32\"]\nauthenticated = \"tag\"\n"
           "[bayes]\nenabled = false\npath = \"bayes\"\n"
           "[clamav]\nenabled = false\n"
           "[outbound]\nenabled = true\nhold_after_spam = 2\nhold_action = \"quarantine\"\n"
           "overrides_file = \"\"\n"
           "[outbound.user_limits]\nmessages_per_minute = 3\nrecipients_per_minute = 5\n";
    std::vector<spamgate::Diagnostic> d;
    auto s = spamgate::load_snapshot((dir / "spamgate.toml").string(), d);
    if (!s.ok()) {
      for (const auto& x : d) std::fprintf(stderr, "%s\n", x.str().c_str());
      __builtin_trap();
    }
    holder = std::make_unique<spamgate::SnapshotHolder>(s.value());
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

}  // namespace

// The snapshot is loaded before the first input, outside its -timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)setup();
  return 0;
}

namespace {

const char* const kIps[] = {"192.0.2.9", "10.1.2.3", "2001:db8::7", "127.0.0.1", "::1", "", "198.51.100.77"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using spamgate::Session;
  FuzzedDataProvider fdp(data, size);
  {
    Session s(*setup().holder, "fuzz");
    FuzzSink sink(fdp.ConsumeIntegral<std::uint16_t>());
    int ops = 0;
    while (fdp.remaining_bytes() > 0 && ++ops < 200) {
      switch (fdp.ConsumeIntegralInRange<int>(0, 11)) {
        case 0: {
          std::string name = fdp.ConsumeRandomLengthString(300);
          std::string ip = fdp.ConsumeBool() ? fdp.ConsumeRandomLengthString(64)
                                             : kIps[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kIps) - 1)];
          s.connect(name, ip, fdp.ConsumeBool());
          break;
        }
        case 1: s.helo(fdp.ConsumeRandomLengthString(1200)); break;
        case 2: {
          std::string from = fdp.ConsumeRandomLengthString(400);
          std::string auth = fdp.ConsumeBool() ? fdp.ConsumeRandomLengthString(300) : std::string();
          s.mail_from(from, auth, fdp.ConsumeRandomLengthString(20));
          break;
        }
        case 3: s.rcpt_to(fdp.ConsumeRandomLengthString(400)); break;
        case 4: {
          std::string name = fdp.ConsumeRandomLengthString(100);
          s.header(name, fdp.ConsumeRandomLengthString(2000));
          break;
        }
        case 5: s.end_of_headers(); break;
        case 6: {
          std::string chunk = fdp.ConsumeRandomLengthString(6000);
          if (fdp.ConsumeBool()) chunk.append(fdp.ConsumeIntegralInRange<size_t>(0, 5000), 'x');
          s.body(reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
          break;
        }
        case 7: s.body_skipped(); break;
        case 8:
          s.end_of_message(fdp.ConsumeRandomLengthString(20), sink);
          if (s.in_message()) __builtin_trap();  // per-message state must be reset
          break;
        case 9:
          s.abort();
          if (s.in_message()) __builtin_trap();
          break;
        case 10: s.set_leading_space(fdp.ConsumeBool()); break;
        case 11: s.set_protocol_flags(fdp.ConsumeIntegral<uint32_t>()); break;
      }
    }
  }  // libmilter's close: the session goes, whatever state it was in
  if (Session::buffered_bytes() != 0) __builtin_trap();  // a closed session holds no message bytes
  return 0;
}
