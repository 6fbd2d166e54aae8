#!/usr/bin/env bash
# Browser check of the figures: writes the example figures (a hand-made
# 12-layer document and the real lens of the tiny-f32 test checkpoint), opens the
# HTML pages in headless Chromium with all network requests blocked, hovers
# cells and compares the panel with each cell's top-1 in the document,
# pins a cell and moves it with the arrow keys, and saves screenshots. It
# also renders the SVG with rsvg-convert (when installed) and Chromium.
#
#   bash export/testdata/browser_test.sh [OUTDIR]
#
# Needs: go, node + npm (installs playwright-core into $LOGITLENS_PW_DIR,
# default /tmp/logitlens-pw), Chromium at $CHROMIUM (default
# /usr/bin/chromium, Debian's `chromium`).
# Optional: rsvg-convert (Debian `librsvg2-bin`). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
pw=${LOGITLENS_PW_DIR:-/tmp/logitlens-pw}
if [ ! -d "$pw/node_modules/playwright-core" ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$pw" playwright-core@1.65.1 >/dev/null
fi
go test ./export -run TestExampleFiles -count=1 -out "$out" >/dev/null
if command -v rsvg-convert >/dev/null; then
  for f in example tiny; do rsvg-convert -o "$out/$f-rsvg.png" "$out/$f.svg"; done
fi
NODE_PATH="$pw/node_modules" node export/testdata/browser_check.js "$out"
echo "browser check passed; screenshots in $out"
