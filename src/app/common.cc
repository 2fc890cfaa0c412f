// common.cc - shared subcommand plumbing (see common.h).
#include "app/common.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "config/config.h"
#include "config/load.h"
#include "util/log.h"

namespace spamgate::app {

namespace fs = std::filesystem;

bool Options::has(const std::string& flag) const {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

std::optional<Options> parse_options(int argc, char** argv, int first, const char* usage, const CommandFlags& own) {
  Options o;
  auto in = [](const std::vector<std::string>& v, const std::string& a) {
    return std::find(v.begin(), v.end(), a) != v.end();
  };
  auto fail = [&](const std::string& why) -> std::optional<Options> {
    std::cerr << "spamgate: " << why << "\n" << usage;
    return std::nullopt;
  };
  std::vector<std::string>* target = &o.args;
  bool options_done = false;  // after "--" every argument is a plain one (a file named "-x")
  bool config_given = false;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (options_done) {
      target->push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "--help" || a == "-h") {  // the usage is the command's manual page section
      std::cout << usage;
      std::exit(0);
    }
    // --name=value is --name value.
    std::optional<std::string> inline_value;
    if (std::size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    std::string value;
    auto take = [&]() -> bool {  // the option's value, inline or the next argument
      if (inline_value) {
        value = *inline_value;
        return true;
      }
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    const bool takes_value = in(own.values, a) || in(own.repeated, a) || a == "--config" || a == "-c" || a == "--repeat";
    if (inline_value && !takes_value) return fail(a + " takes no value");
    if (in(own.switches, a)) {
      o.flags.push_back(a);
    } else if (in(own.values, a)) {
      if (o.values.count(a)) return fail(a + " is given twice");
      if (!take()) return fail(a + " needs a value");
      o.values[a] = value;
    } else if (in(own.repeated, a)) {
      if (!take()) return fail(a + " needs a value");
      o.lists[a].push_back(value);
    } else if (in(own.lists, a)) {
      target = &o.lists[a];
    } else if (a == "--config" || a == "-c") {
      if (config_given) return fail("--config is given twice");
      if (!take() || value.empty()) return fail("--config needs a file");
      o.config = value;
      config_given = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--rewrite") {
      o.rewrite = true;
    } else if (a == "--network") {
      o.network = true;
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a == "--repeat") {
      if (!take() || std::atoi(value.c_str()) < 1) return fail("--repeat needs a positive number");
      o.repeat = std::atoi(value.c_str());
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      return fail("unknown option " + a);
    } else {
      target->push_back(a);
    }
  }
  // Options that cannot both hold.
  if (o.json && o.rewrite) return fail("--json and --rewrite cannot be combined");
  if (o.quiet && in(o.flags, "--verbose")) return fail("--quiet and --verbose cannot be combined");
  return o;
}

namespace {

std::string config_path_of(const Options& opt) { return opt.config.empty() ? default_config_path() : opt.config; }

bool start_logging(const Options& opt, const Config& c, const std::string& level) {
  Status s = init_logging(!level.empty() ? level : opt.quiet ? "warn" : c.log_level, c.log_target);
  if (!s.ok()) std::cerr << "spamgate: " << s.message() << "\n";
  return s.ok();
}

}  // namespace

std::shared_ptr<const Snapshot> load_or_report(const Options& opt, std::optional<LoadOptions> load,
                                               const std::string& level) {
  const std::string path = config_path_of(opt);
  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(path, diags, load ? *load : LoadOptions{.network = opt.network});
  for (const Diagnostic& d : diags) std::cerr << d.str() << "\n";
  if (!snap.ok()) {
    std::cerr << "spamgate: cannot load " << path << ": " << snap.status().message() << "\n";
    return nullptr;
  }
  if (!start_logging(opt, snap.value()->config, level)) return nullptr;
  return snap.value();
}

std::optional<Config> config_or_report(const Options& opt, const std::string& level) {
  const std::string path = config_path_of(opt);
  std::vector<Diagnostic> diags;
  auto loaded = load_config(path, diags);
  for (const Diagnostic& d : diags) std::cerr << d.str() << "\n";
  if (!loaded.ok()) {
    std::cerr << "spamgate: cannot load " << path << ": " << loaded.status().message() << "\n";
    return std::nullopt;
  }
  start_logging(opt, loaded.value(), level);  // a log target that cannot open: stderr, said so
  return std::move(loaded.value());
}

std::optional<Started> start_command(int argc, char** argv, const char* usage, bool quiet,
                                     const CommandFlags& own) {
  auto opt = parse_options(argc, argv, 2, usage, own);
  if (!opt) return std::nullopt;
  if (opt->args.empty()) {
    std::cerr << usage;
    return std::nullopt;
  }
  opt->quiet = opt->quiet || quiet;
  auto snap = load_or_report(*opt);
  if (!snap) return std::nullopt;
  return Started{std::move(*opt), std::move(snap)};
}

CommandFlags sender_flags() {
  CommandFlags f;
  f.switches = {"--local"};
  f.values = {"--client-ip", "--client-name", "--helo", "--mail-from", "--login", "--queue-id"};
  f.repeated = {"--rcpt"};
  return f;
}

const char* const kSenderUsage =
    "Who sent it (as the milter saw it; default: an unauthenticated client on the internet):\n"
    "  --client-ip IP  --client-name NAME  --helo NAME  --mail-from ADDR  --rcpt ADDR (repeat)\n"
    "  --login USER    the SMTP AUTH login ({auth_authen}): authenticated, outbound mail\n"
    "  --local         a local submission (sendmail, pickup: Postfix's non_smtpd_milters)\n"
    "  --queue-id ID   the label of the log line\n";

Replay replay_of(const Options& opt, const Snapshot& snap) {
  Replay r;
  auto value = [&](const char* name) {
    auto it = opt.values.find(name);
    return it == opt.values.end() ? std::string() : it->second;
  };
  r.env.client_ip = value("--client-ip");
  r.env.client_name = value("--client-name");
  r.env.helo = value("--helo");
  r.env.mail_from = value("--mail-from");
  if (r.env.mail_from.size() >= 2 && r.env.mail_from.front() == '<' && r.env.mail_from.back() == '>')
    r.env.mail_from = r.env.mail_from.substr(1, r.env.mail_from.size() - 2);
  r.env.auth_user = value("--login");
  r.env.queue_id = value("--queue-id");
  if (auto it = opt.lists.find("--rcpt"); it != opt.lists.end()) r.env.rcpt_to = it->second;
  r.sender = classify_sender(snap.config, r.env, opt.has("--local"));
  return r;
}

namespace {

// True when the first line looks like a header field or an mbox "From " line.
bool starts_like_mail(std::string_view b) {
  if (b.rfind("From ", 0) == 0) return true;
  std::size_t i = 0;
  while (i < b.size() && i < 200 && b[i] > 32 && b[i] < 127 && b[i] != ':') ++i;
  return i > 0 && i < b.size() && b[i] == ':';
}

bool looks_binary(std::string_view b) {
  if (starts_like_mail(b)) return false;
  std::string_view head = b.substr(0, 1024);
  std::size_t odd = 0;
  for (unsigned char c : head) {
    if (c == 0) return true;
    if (c < 32 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 27) ++odd;
  }
  return odd * 10 > head.size();
}

}  // namespace

Input read_input(const std::string& path) {
  Input in;
  in.name = path;
  if (path == "-") {
    in.bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      in.error = "no such file";
      return in;
    }
    if (fs::is_directory(path, ec)) {
      in.error = "is a directory";
      return in;
    }
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      in.error = std::string("cannot read: ") + std::strerror(errno);
      return in;
    }
    in.bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (f.bad()) {
      in.error = "read error";
      return in;
    }
  }
  if (in.bytes.empty()) in.error = "empty file, not a message";
  else if (looks_binary(in.bytes)) in.error = "binary file, not a message";
  return in;
}

namespace {

// "From sender@example.com  Mon Aug 26 15:14:22 2002": an mbox separator.
bool mbox_separator(std::string_view line) {
  if (line.rfind("From ", 0) != 0) return false;
  std::size_t i = 5;
  while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;  // the sender
  if (i == 5) return false;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  static const char* days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  std::string_view rest = line.substr(std::min(i, line.size()));
  return std::any_of(std::begin(days), std::end(days), [&](const char* d) { return rest.rfind(d, 0) == 0; });
}

}  // namespace

std::optional<std::size_t> for_each_message_in(const std::string& path, std::size_t max_bytes,
                                               const std::function<void(std::string&)>& fn) {
  if (path == "-") return for_each_message(std::cin, max_bytes, fn);
  std::ifstream file(path, std::ios::binary);
  std::error_code ec;
  if (!file || std::filesystem::is_directory(path, ec)) {
    std::cerr << "spamgate: " << path << ": cannot read\n";
    return std::nullopt;
  }
  return for_each_message(file, max_bytes, fn);
}

std::size_t for_each_message(std::istream& in, std::size_t max_bytes,
                             const std::function<void(std::string&)>& fn) {
  std::string cur, line;
  std::size_t count = 0;
  bool first = true, mbox = false, after_blank = true, in_message = false;
  auto emit = [&] {
    if (mbox && cur.size() >= 2 && cur[cur.size() - 1] == '\n' && cur[cur.size() - 2] == '\n') cur.pop_back();
    if (!cur.empty()) {
      fn(cur);
      ++count;
    }
    cur.clear();
  };
  while (std::getline(in, line)) {
    if (!in.eof()) line.push_back('\n');
    if (first) {
      first = false;
      mbox = mbox_separator(line);
      if (mbox) {
        in_message = true;
        continue;
      }
      in_message = true;
    }
    if (mbox) {
      bool blank = line == "\n" || line == "\r\n";
      bool sep = after_blank && mbox_separator(line);
      after_blank = blank;
      if (sep) {  // a separator (mboxrd: "From " in text is quoted)
        emit();
        continue;
      }
      std::size_t gt = 0;
      while (gt < line.size() && line[gt] == '>') ++gt;
      if (gt > 0 && std::string_view(line).substr(gt).rfind("From ", 0) == 0) line.erase(0, 1);  // >From -> From
    }
    if (cur.size() < max_bytes) cur.append(line, 0, max_bytes - cur.size());  // the rest is not scanned anyway
  }
  if (in_message) emit();
  return count;
}

std::vector<std::string> split_mbox(std::string_view b) {
  std::istringstream in{std::string(b)};
  std::vector<std::string> out;
  for_each_message(in, b.size() + 1, [&](std::string& m) { out.push_back(std::move(m)); });
  return out;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    std::error_code ec;
    if (a != "-" && fs::is_directory(a, ec)) {
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(a, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back(it->path().string());
      }
      std::sort(files.begin(), files.end());
      out.insert(out.end(), files.begin(), files.end());
    } else {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace spamgate::app
