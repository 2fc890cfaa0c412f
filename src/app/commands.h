// commands.h - one entry point per subcommand (src/app/cmd_<sub>.cc).
// Each returns the process exit code.
#pragma once

namespace spamgate::app {

int cmd_scan(int argc, char** argv);
int cmd_explain(int argc, char** argv);
int cmd_lint(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_milter(int argc, char** argv);
int cmd_learn(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_release(int argc, char** argv);
int cmd_history(int argc, char** argv);
int cmd_passwd(int argc, char** argv);
int cmd_reload(int argc, char** argv);

}  // namespace spamgate::app
