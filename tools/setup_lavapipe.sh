#!/usr/bin/env bash
# A software Vulkan device (Mesa's lavapipe) for the WebGPU tests on a machine without a GPU,
# installed into a private folder: Debian bookworm's own mesa-vulkan-drivers (22.3.6) is rejected
# by Dawn, bookworm-backports' 25.0.7 works (REFERENCE §13). The system's apt sources are never
# touched: the backports index goes into a private apt state under the folder.
#
#   bash tools/setup_lavapipe.sh [DIR]     (default out/lavapipe)
#
# Prints the environment to use, e.g. `eval "$(bash tools/setup_lavapipe.sh)"`:
#   VK_DRIVER_FILES=DIR/lvp_icd.json  LD_LIBRARY_PATH=DIR/root/usr/lib/x86_64-linux-gnu:…
# Needs the system's libvulkan1 (bookworm), which this script installs when missing and allowed.
set -euo pipefail

VERSION="25.0.7-2~bpo12+1"
dir=$(realpath -m "${1:-out/lavapipe}")
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs"

if [ ! -f "$dir/lvp_icd.json" ]; then
  # the loader and what lavapipe 25 links against, all from bookworm itself
  deps=(libvulkan1 libllvm15 libdrm2 libxcb-dri3-0 libxcb-present0 libxcb-shm0 libxcb-randr0
    libxcb-sync1 libxshmfence1 libwayland-client0 libx11-xcb1 libzstd1 libexpat1 libelf1)
  if ! dpkg -s "${deps[@]}" >/dev/null 2>&1; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${deps[@]}" >&2
  fi
  echo "deb http://deb.debian.org/debian bookworm-backports main" >"$dir/apt/sources.list"
  apt=(apt-get -q -o Dir::Etc::sourcelist="$dir/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
    -o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache"
    -o Debug::NoLocking=1)
  "${apt[@]}" update >&2
  (cd "$dir/debs" && "${apt[@]}" download "mesa-vulkan-drivers=$VERSION" >&2)
  deb=$(ls "$dir"/debs/mesa-vulkan-drivers_*.deb)
  dpkg -x "$deb" "$dir/root"
  icd="$dir/root/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
  [ -f "$icd" ] || icd=$(ls "$dir"/root/usr/share/vulkan/icd.d/lvp_icd*.json | head -n 1)
  lib=$(ls "$dir"/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so)
  # the ICD names its library by file name; point it at the private copy
  sed -E "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib\"#" "$icd" >"$dir/lvp_icd.json"
  rm -rf "$dir/apt" "$dir/debs"
  missing=$(ldd "$lib" | grep "not found" || true)
  if [ -n "$missing" ]; then
    echo "lavapipe's library lacks: $missing" >&2
    exit 1
  fi
fi
echo "export VK_DRIVER_FILES=$dir/lvp_icd.json"
