#!/bin/sh
# Install the Debian packages pypbx's tests talk to (only those that are missing).
# Needs root (or sudo) on Debian 12. `install-deps.sh runtime` installs only what the PBX
# itself uses (sox and espeak-ng make its prompts; gcc, libc6-dev and python3-dev let the
# install build the RTP relay's C fast path, pypbx/media/_fastrelay.c).
set -eu
if [ "${1:-test}" = "runtime" ]; then
    PKGS="sox espeak-ng gcc libc6-dev python3-dev"
else
    PKGS="sip-tester baresip kamailio sox tshark iproute2 iptables espeak-ng sqlite3 gcc libc6-dev python3-dev"
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
