#!/usr/bin/env bash
# Installs the Debian 12 packages spamgate needs to build, run and test.
# Idempotent and non-interactive: packages already present are left alone.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libgmime-3.0-dev libglib2.0-dev libxml2-dev libpcre2-dev
  libspdlog-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev
  libgtest-dev libmilter-dev libc-ares-dev dnsmasq-base libpsl-dev publicsuffix libspf2-dev
  libopendkim-dev libopendmarc-dev opendkim-tools python3-dkim python3-authres
  libclamav-dev liblmdb-dev libhiredis-dev redis-server libhyperscan-dev libxxhash-dev libcivetweb-dev libsystemd-dev
  help2man curl libcrypt-dev libssl-dev
  chromium chromium-driver python3-selenium
  clang libclang-rt-14-dev
  postfix swaks python3 miltertest m4 iproute2
  spamassassin
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix is only used for the end-to-end tests and benchmarks, as private
# instances (postfix -c DIR); the system instance stays unconfigured.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
