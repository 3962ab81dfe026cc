#!/bin/sh
# Installs the Debian packages the build needs, or says exactly how.
# usage: tools/deps.sh PACKAGE...   (only the missing ones are installed)
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >/dev/null 2>&1 \
    || { apt-get update && apt-get install -y --no-install-recommends $missing; } || exit 1
  exit 0
fi
echo "missing Debian packages:$missing" >&2
echo "install them with:  sudo apt-get install -y$missing" >&2
exit 1
