// cmd_passwd.cc - `spamgate passwd NAME`: a line for the console's users
// file ([console] users_file): NAME:HASH, the password hashed with
// yescrypt (crypt(3), libxcrypt). The password is read from standard input
// (asked twice, not echoed, on a terminal); it is never an argument, which
// other users could read in the process list.
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "app/commands.h"
#include "console/auth.h"

namespace spamgate::app {

namespace {

// One line from standard input; echo off on a terminal (restored on every path).
bool read_secret(const char* prompt, std::string& out) {
  const bool tty = isatty(STDIN_FILENO) == 1;
  termios old{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  const bool got = static_cast<bool>(std::getline(std::cin, out));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return got;
}

}  // namespace

int cmd_passwd(int argc, char** argv) {
  const char* usage =
      "usage: spamgate passwd NAME\n"
      "Prints a line for the console's users file ([console] users_file): NAME:HASH (yescrypt).\n"
      "The password comes from standard input (asked twice on a terminal), e.g.\n"
      "  spamgate passwd alice >> /etc/spamgate/console-users\n"
      "Exit: 0 printed; 1 the passwords differ or are empty; 2 usage error.\n";
  if (argc != 3 || argv[2][0] == '-') {
    std::cerr << usage;
    return 2;
  }
  const std::string name = argv[2];
  if (name.size() > 64 || name.find_first_of(":# \t\"<>&'") != std::string::npos) {
    std::cerr << "spamgate passwd: a name has no ':', '#', quotes, spaces or <>&, and at most 64 characters\n";
    return 2;
  }
  std::string pw, again;
  if (!read_secret("Password: ", pw) || pw.empty()) {
    std::cerr << "spamgate passwd: no password given\n";
    return 1;
  }
  if (isatty(STDIN_FILENO) == 1 && (!read_secret("Again: ", again) || again != pw)) {
    std::cerr << "spamgate passwd: the passwords differ\n";
    return 1;
  }
  std::string hash = console::hash_password(pw);
  if (hash.empty()) {
    std::cerr << "spamgate passwd: crypt(3) could not hash the password\n";
    return 1;
  }
  std::cout << name << ":" << hash << "\n";
  return 0;
}

}  // namespace spamgate::app
