#!/usr/bin/env bash
# Look at the notebooks the way a reader does: export each (with its committed outputs) to HTML with
# Jupyter's own exporter, then take a full-page screenshot of it in headless Chromium.
#
# Usage: bash tools/notebook_screenshots.sh [OUT_DIR (default out/notebook-screenshots)] [NOTEBOOK...]
# Needs Debian's jupyter-nbconvert and chromium. Writes OUT_DIR/<name>.html and OUT_DIR/<name>.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-out/notebook-screenshots}
shift || true
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/*.ipynb)
command -v chromium >/dev/null || { echo "notebook_screenshots: needs chromium (apt-get install chromium)" >&2; exit 1; }
mkdir -p "$out"
out=$(realpath "$out")
for notebook in "${notebooks[@]}"; do
  name=$(basename "$notebook" .ipynb)
  jupyter nbconvert --to html --output-dir "$out" --output "$name" "$notebook" >/dev/null 2>&1
  # headless Chromium shoots the window, not the page: a tall window holds the longest notebook
  timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1100,9000 --screenshot="$out/$name.png" "file://$out/$name.html" >/dev/null 2>&1
  [ -s "$out/$name.png" ] || { echo "notebook_screenshots: chromium wrote no $out/$name.png" >&2; exit 1; }
  echo "$out/$name.png"
done
