#!/usr/bin/env bash
# Install the browser libraries the console serves itself (no CDN: the pages must work on a
# network with no internet) and the documents' fallback Chinese font from the pinned
# package-lock.json, and copy the files used into src/cityloop/web/static/vendor/
# (git-ignored). Quick when already up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

VENDOR=src/cityloop/web/static/vendor
STAMP="$VENDOR/.installed"

if [ -f "$STAMP" ] && [ "$STAMP" -nt package-lock.json ] && [ "$STAMP" -nt "$0" ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to install the web assets" >&2; exit 1; }

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

rm -rf "$VENDOR"
mkdir -p "$VENDOR/leaflet/images"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$VENDOR/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$VENDOR/leaflet/images/"
cp node_modules/leaflet.heat/dist/leaflet-heat.js "$VENDOR/leaflet-heat.js"
cp node_modules/echarts/dist/echarts.min.js "$VENDOR/echarts.min.js"
cp node_modules/htmx.org/dist/htmx.min.js "$VENDOR/htmx.min.js"
# The Chinese font documents (文书) embed when Debian's fonts-wqy-microhei is not installed
# (cityloop.documents.render): only the one weight used, 15 MB of the package's 115 MB.
mkdir -p "$VENDOR/fonts"
cp node_modules/@expo-google-fonts/noto-serif-sc/400Regular/NotoSerifSC_400Regular.ttf "$VENDOR/fonts/"
cp node_modules/@expo-google-fonts/noto-serif-sc/LICENSE_FONT "$VENDOR/fonts/NotoSerifSC-LICENSE.txt"
touch "$STAMP"
echo "web assets installed into $VENDOR"
