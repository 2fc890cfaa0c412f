// diagnostic.h - a problem found in a config or rules file, with its place.
#pragma once

#include <string>

namespace spamgate {

// A place in a rules or config file, for error messages.
struct Diagnostic {
  std::string file;
  int line = 0;  // 0 = the whole file
  std::string message;
  std::string str() const {  // "file:line: message"
    return line > 0 ? file + ":" + std::to_string(line) + ": " + message : file + ": " + message;
  }
};

// Lines of one kind that were read and not used (a directive we skip, an
// eval test not implemented...): how many, and the first one.
struct SkipCount {
  int count = 0;
  Diagnostic first;
};

}  // namespace spamgate
