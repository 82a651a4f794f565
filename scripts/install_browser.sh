#!/usr/bin/env bash
# Install the browser the page tests drive (Debian's chromium) and a CJK font so Chinese
# renders instead of boxes. Playwright's own browser download cannot work offline, so the tests
# launch /usr/bin/chromium instead. Idempotent: a no-op when both are already installed.
set -euo pipefail

have_font() { dpkg-query -W -f='${Status}' fonts-wqy-microhei 2>/dev/null | grep -q "ok installed"; }

if [ -x /usr/bin/chromium ] && have_font; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null
test -x /usr/bin/chromium
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
