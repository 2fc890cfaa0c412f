#!/usr/bin/env bash
# Installs what is needed, builds spamgate, lints the default config and
# rules, and runs the main job on the default config: the milter, in the
# foreground, listening where conf/spamgate.toml says (inet:8895@127.0.0.1).
# Stop it with Ctrl-C; reload rules with: kill -USR1 <pid>.
# usage: scripts/run.sh              run the milter
#        scripts/run.sh scan FILE... score message files instead
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j"$(nproc)"
build/spamgate lint --config conf/spamgate.toml
if [ "${1:-}" = "scan" ]; then
  shift
  if [ "$#" -eq 0 ]; then set -- corpus; fi
  exec build/spamgate scan --config conf/spamgate.toml "$@"
fi
cat <<'TXT'
spamgate milter starting. Point Postfix at it (main.cf):
    smtpd_milters = inet:127.0.0.1:8895
    non_smtpd_milters = inet:127.0.0.1:8895
    milter_default_action = accept
TXT
exec build/spamgate milter --config conf/spamgate.toml
