#!/usr/bin/env bash
# make_man.sh BIN OUT: spamgate(8) from the binary's own --help texts
# (help2man), with a section per subcommand; gzipped to OUT.
set -euo pipefail
BIN=$1; OUT=$2
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
{
  echo "[DESCRIPTION]"
  echo "spamgate is a spam-filtering milter for Postfix: rules (PCRE2), SPF, DKIM, DMARC, DNS"
  echo "blocklists, ClamAV signatures in process, a Bayes classifier, and outbound limits for"
  echo "the provider's own customers. Each subcommand below takes --help."
  echo
  echo "[COMMANDS]"
  for cmd in milter scan explain lint learn eval bench release; do
    echo ".SS $cmd"
    echo ".nf"
    "$BIN" "$cmd" --help 2>&1 | sed 's/\\/\\\\/g; s/^\./\\\&./'
    echo ".fi"
  done
  echo "[SIGNALS]"
  echo "SIGUSR1 (systemctl reload) reloads the config, rules, signatures and log level; a broken"
  echo "file keeps the old ones and is logged as file:line. SIGTERM drains messages in flight."
  echo "SIGHUP reloads as SIGUSR1 does. SIGTERM and SIGINT drain (new connections get 4xx) and stop."
  echo
  echo "[FILES]"
  echo "/etc/spamgate/spamgate.toml (every key documented), /etc/spamgate/local.cf (support's"
  echo "rule and score overrides), /etc/spamgate/outbound-limits.conf, /usr/share/spamgate/rules,"
  echo "/var/lib/spamgate (Bayes and outbound state, site key)."
  echo
  echo "[SEE ALSO]"
  echo "postfix(1), postsuper(1), /usr/share/doc/spamgate/README.md"
} > "$inc"
help2man --no-info --section 8 --name "spam-filtering milter for Postfix" --include "$inc" \
  --version-string "$("$BIN" --version | awk '{print $2}')" "$BIN" | gzip -9n > "$OUT"
