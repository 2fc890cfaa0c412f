// common.h - what every subcommand shares: options, config, reading inputs.
#pragma once

#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/load.h"
#include "spamgate/disposition.h"
#include "spamgate/snapshot.h"

namespace spamgate::app {

struct Options {
  std::string config;                // --config F
  bool json = false;                 // --json
  bool rewrite = false;              // --rewrite
  bool network = false;              // --network
  bool quiet = false;                // --quiet: no per-message log lines
  int repeat = 1;                    // --repeat N (bench)
  std::vector<std::string> args;     // the rest
  std::vector<std::string> flags;    // a command's own switches that were given (e.g. "--stats")
  std::map<std::string, std::string> values;  // a command's own "--name VALUE" options
  // A command's list options ("--ham A B --spam C"): arguments after one go to its list.
  std::map<std::string, std::vector<std::string>> lists;
  bool has(const std::string& flag) const;
};

// What a command accepts besides the common options.
struct CommandFlags {
  std::vector<std::string> switches;  // e.g. "--stats"
  std::vector<std::string> values;    // take one argument, e.g. "--folds"
  std::vector<std::string> lists;     // e.g. "--ham": later plain arguments go to it
  std::vector<std::string> repeated;  // take one argument each time given, e.g. "--rcpt": into lists
};

// Parses argv[first..]; on a usage error prints it and returns nullopt.
std::optional<Options> parse_options(int argc, char** argv, int first, const char* usage,
                                     const CommandFlags& own = {});

// "Load the config, print its diagnostics, start logging", written once for
// every subcommand. Loads the snapshot for `opt.config` (or the default
// config), prints every config/rules error to stderr and sets up logging at
// `level` ("" = the config's log_level, or warn with --quiet). nullptr on
// failure (exit 2). `load.network` defaults to --network.
std::shared_ptr<const Snapshot> load_or_report(const Options& opt, std::optional<LoadOptions> load = std::nullopt,
                                               const std::string& level = "");

// The same for commands that need only the config (no rules, signatures or
// DNS): learn, release.
std::optional<Config> config_or_report(const Options& opt, const std::string& level);

// The start every message-reading subcommand shares: options parsed, at
// least one input given, snapshot loaded. nullopt (usage or config error
// already printed) means exit 2. `quiet` forces --quiet.
struct Started {
  Options opt;
  std::shared_ptr<const Snapshot> snap;
};
std::optional<Started> start_command(int argc, char** argv, const char* usage, bool quiet,
                                     const CommandFlags& own = {});

// The options that say who sent a message being replayed (scan, explain):
// --client-ip --client-name --helo --mail-from --login --rcpt (repeated)
// --queue-id and the switch --local, as the milter would have them.
CommandFlags sender_flags();
extern const char* const kSenderUsage;  // their lines for a usage text

// The envelope and sender class those options give under `snap`'s config.
struct Replay {
  Envelope env;
  Sender sender;
};
Replay replay_of(const Options& opt, const Snapshot& snap);

// One input message: its bytes or why it cannot be scanned.
struct Input {
  std::string name;
  std::string bytes;
  std::string error;  // non-empty: missing, unreadable, empty or binary
};

// Reads `path` ("-" = stdin). Directories are expanded by expand_inputs().
Input read_input(const std::string& path);

// Reads `in` as an mbox ("From " separator lines, ">From " unquoted) when
// it starts with a separator line, else as one message, and calls `fn` for
// each message, at most `max_bytes` of it (the rest is skipped: nothing
// scans it), without holding more than one message in memory. Returns the
// number of messages.
std::size_t for_each_message(std::istream& in, std::size_t max_bytes, const std::function<void(std::string&)>& fn);

// The same over the file `path` ("-" = stdin); nullopt (after printing
// "spamgate: PATH: cannot read" to stderr) when it cannot be opened or is a
// directory.
std::optional<std::size_t> for_each_message_in(const std::string& path, std::size_t max_bytes,
                                               const std::function<void(std::string&)>& fn);

// The same over bytes in memory.
std::vector<std::string> split_mbox(std::string_view bytes);

// Expands directories (recursively, sorted) into their files; keeps "-".
std::vector<std::string> expand_inputs(const std::vector<std::string>& args);

}  // namespace spamgate::app
