#!/usr/bin/env bash
# The GPU check (docs/models.md, "GPUs: WebGPU and CUDA"). On a machine with an NVIDIA GPU and no network:
# the SD-1.5-sized UNet of tools/build_sd15_benchmark.py (random weights, exported to ONNX there, fp32
# and fp16) through infodiff on WebGPU (tools/gpu_check.ts) and through PyTorch eager on CUDA
# (tools/gpu_check.py); the noise predictions are compared and items/s printed at batch 1, 8 and 32.
#
#   bash tools/gpu-check.sh prepare         here: gathers out/gpu-check/ (Deno and onnxruntime-node's
#                                           Linux binaries, xz-compressed; the Vulkan loader .debs)
#                                           and cuts it into the parts that travel, one per device
#                                           call (out/gpu-check-travel/1, 2, …: tree + part ≤ 64 MiB)
#   bash tools/gpu-check.sh prepare --plan  here, offline and in seconds: the manifest and an
#                                           uncompressed node_modules.tar, nothing downloaded
#   bash tools/gpu-check.sh budget          the size check alone (each part against the tree)
#   bash tools/gpu-check.sh smoke           here: the run stage's infodiff half from the parts put
#                                           together, with an empty Deno cache and --cached-only,
#                                           on the CPU
#   bash tools/gpu-check.sh smoke-families  here: the families step from the parts put together, on
#                                           the CPU at 256² (the tools environment's Python, 3 GB of
#                                           weights filled under /tmp/gpu-check)
#   bash tools/gpu-check.sh receive         on the GPU machine: the command of every call but the
#                                           last; checks the parts that have arrived
#   bash tools/gpu-check.sh run             on the GPU machine: the last call's command
#
# The families step (issue 24), in the bundle when tools/build_family_realwidth.py has built
# out/family-realwidth here: FLUX.1-dev's and SD 3's transformers at their released width (few
# blocks; graphs without weights, filled there by tools/family_weights.py from diffusers' own
# initialisation), through infodiff on WebGPU (tools/gpu_check_families.ts) and diffusers on CUDA
# (tools/gpu_check_families.py, diffusers from its carried wheel), at 1024², compared and timed.
# The glue step: `deno task bench`'s family glue (host-side time per transformer item at the
# families' real tensor sizes) on the GPU machine's own processor. GPU_CHECK_STEPS (default
# sd15,families,glue) chooses the steps.
#
# Why parts: the device tool sends the tree and the carried paths, 64 MiB a call; the bundle (48 MiB)
# and the tree (33 MiB on 2026-12-06) do not fit one call together. A warm machine keeps the ignored
# files an earlier call left, so each call carries one part and the last puts them together; the
# calls must follow one another at once (a machine goes back 30 s after a call), or `run` says which
# part is missing. `prepare` prints the calls.
#
# What the GPU machine needs beyond the tree: Python with PyTorch, onnx and NumPy (the lent machines
# have them), an NVIDIA driver with its Vulkan ICD. Everything else comes from the parts.
# Environment: GPU_CHECK_DIR (default out/gpu-check), GPU_CHECK_TRAVEL (default
# out/gpu-check-travel), GPU_CHECK_PART_BYTES (the largest part; default what the tree leaves of 64
# MiB, less 1 MiB), GPU_CHECK_TMP (default /tmp/gpu-check), DENO (default: npx's deno 2.9.6),
# GPU_CHECK_BATCHES (default 1,8,32), GPU_CHECK_FAMILY_BATCHES (default 1,4), GPU_CHECK_STEPS.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=${GPU_CHECK_DIR:-out/gpu-check}
steps=${GPU_CHECK_STEPS:-sd15,families,glue}
family_batches=${GPU_CHECK_FAMILY_BATCHES:-1,4}
FAMILY_SOURCE=${GPU_CHECK_FAMILIES_FROM:-out/family-realwidth}
FAMILIES=(flux sd3)
DIFFUSERS_VERSION=0.36.0 # tools/python-env.sh's: the version the pipelines were built with
travel=${GPU_CHECK_TRAVEL:-out/gpu-check-travel}
tmp=${GPU_CHECK_TMP:-/tmp/gpu-check}
batches=${GPU_CHECK_BATCHES:-1,8,32}
BUDGET=$((64 * 1024 * 1024)) # what the device tool carries: the tree and the carried paths
MARGIN=$((1024 * 1024))      # room for the tree to change between prepare and the calls
DENO_VERSION=2.9.6
ROOTS="onnxruntime-node onnx-proto" # the npm packages the check loads (their dependencies follow)
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2) # the device README's loaders
# parts of those packages the check never loads: other platforms' binaries, protobufjs' CLI
EXCLUDE=(--exclude=bin/napi-v6/darwin --exclude=bin/napi-v6/win32
  --exclude=bin/napi-v6/linux/arm64 --exclude=protobufjs/cli)

say() { printf 'gpu-check: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }

deno_binary() {
  local deno=${DENO:-$(npx -y "deno@$DENO_VERSION" eval 'console.log(Deno.execPath())')}
  local version
  version=$("$deno" --version | head -n 1)
  [[ $version == "deno $DENO_VERSION "* ]] || die "$deno is '$version', expected deno $DENO_VERSION"
  echo "$deno"
}

# The node_modules/.deno folders of ROOTS and everything they depend on, from Deno's own graph.
packages() { # $1 = deno
  "$1" info --json tools/gpu_check.ts | ROOTS="$ROOTS" "$1" eval --no-config '
    const { npmPackages } = JSON.parse(await new Response(Deno.stdin.readable).text());
    const roots = Deno.env.get("ROOTS").split(" ");
    const todo = Object.keys(npmPackages).filter((k) => roots.includes(npmPackages[k].name));
    if (todo.length !== roots.length) throw new Error(`found ${todo} for ${roots}`);
    const seen = new Set();
    while (todo.length) {
      const key = todo.pop();
      if (seen.has(key)) continue;
      seen.add(key);
      todo.push(...(npmPackages[key].dependencies ?? []));
    }
    for (const key of [...seen].sort()) {
      console.log(npmPackages[key].localPath.split("/node_modules/.deno/")[1].split("/")[0]);
    }'
}

# tar of those folders (without EXCLUDE) and of their top-level links, to stdout.
node_modules_tar() { # $@ = package folders
  local entries=() folder name
  for folder in "$@"; do
    [ -f "node_modules/.deno/$folder/.initialized" ] || die "node_modules/.deno/$folder is not installed"
    entries+=(".deno/$folder")
    name=${folder%@*}
    name=${name/+//}
    if [ -L "node_modules/$name" ]; then entries+=("$name"); fi
  done
  tar -C node_modules -c "${EXCLUDE[@]}" "${entries[@]}"
}

# Bytes of the tree the device tool sends with every call: tracked and untracked-not-ignored files.
tree_bytes() {
  git ls-files -z --cached --others --exclude-standard |
    xargs -0 stat -c %s 2>/dev/null | sum || true
}

# Each carried path (default: the travel parts, or the bundle folder where there are none) with
# the tree against the device tool's limit.
budget() { # $@ = carried paths
  local tree carry total path paths=("$@")
  tree=$(tree_bytes)
  if [ ${#paths[@]} -eq 0 ]; then
    mapfile -t paths < <(parts)
    [ ${#paths[@]} -gt 0 ] || paths=("$dir")
  fi
  for path in "${paths[@]}"; do
    carry=$(find "$path" -type f -printf '%s\n' 2>/dev/null | sum)
    total=$((tree + carry))
    if [ "$total" -gt "$BUDGET" ]; then
      die "over budget: the tree $(mib "$tree") + $path $(mib "$carry") = $(mib "$total") > $(mib "$BUDGET")"
    fi
    say "travels: the tree $(mib "$tree") + $path $(mib "$carry") = $(mib "$total") ≤ $(mib "$BUDGET")"
  done
}

# The travel parts' folders present, in order (1, 2, …).
parts() {
  [ -d "$travel" ] || return 0
  find "$travel" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9]+' -printf '%f\n' | sort -n |
    sed "s|^|$travel/|"
}

# Cuts the bundle folder into parts that each travel with the tree in one device call: a tar of
# the folder (its files are compressed already) split into equal pieces, each in its own folder
# with the checksums of all of them.
cut_parts() {
  local tree room bundle total count size k
  tree=$(tree_bytes)
  room=${GPU_CHECK_PART_BYTES:-$((BUDGET - tree - MARGIN))}
  [ "$room" -ge $((1024 * 1024)) ] ||
    die "the tree ($(mib "$tree")) leaves no room under $(mib "$BUDGET") for a part of the bundle"
  rm -rf "$travel"
  mkdir -p "$travel"
  bundle=$travel/bundle.tar
  tar -C "$dir" -cf "$bundle" .
  total=$(stat -c %s "$bundle")
  count=$(((total + room - 1) / room))
  size=$(((total + count - 1) / count))
  split -b "$size" -d -a 3 "$bundle" "$travel/piece-"
  rm "$bundle"
  for k in $(seq 1 "$count"); do
    mkdir "$travel/$k"
    mv "$travel/piece-$(printf %03d $((k - 1)))" "$travel/$k/part"
    echo "$(sha256sum "$travel/$k/part" | cut -d' ' -f1) $k" >>"$travel/sums"
  done
  for k in $(seq 1 "$count"); do cp "$travel/sums" "$travel/$k/sums"; done
  rm "$travel/sums"
  say "the bundle ($(mib "$total")) travels in $count part(s) of at most $(mib "$size"); the device calls:"
  for k in $(seq 1 "$count"); do
    if [ "$k" -lt "$count" ]; then
      say "  device run: command \"bash tools/gpu-check.sh receive\", carry [\"$travel/$k\"], timeout_s 60"
    else
      say "  device run: command \"bash tools/gpu-check.sh run\", carry [\"$travel/$k\"], timeout_s 600"
    fi
  done
  [ "$count" -eq 1 ] || say "  (one right after another: a machine goes back 30 s after a call)"
}

# Which parts have arrived whole: prints the count of parts and the missing ones' numbers.
arrived() {
  local sums k sum missing=() count
  sums=$(find "$travel" -mindepth 2 -maxdepth 2 -name sums 2>/dev/null | head -n 1)
  [ -n "$sums" ] || die "no part in $travel: carry $travel/K in each call ('prepare' prints them)"
  count=$(wc -l <"$sums")
  while read -r sum k; do
    if [ ! -f "$travel/$k/part" ] || [ "$(sha256sum "$travel/$k/part" | cut -d' ' -f1)" != "$sum" ]; then
      missing+=("$k")
    fi
  done <"$sums"
  echo "$count ${missing[*]}"
}

# Puts the parts together into $1 (a fresh folder): every part must be there, unchanged.
assemble() { # $1 = folder
  local state count missing k
  state=$(arrived)
  read -r count missing <<<"$state"
  if [ -n "$missing" ]; then
    die "part(s) $missing of $count missing or damaged in $travel: make the calls again, one right after another (a machine goes back 30 s after a call and a fresh one keeps nothing)"
  fi
  rm -rf "$1"
  mkdir -p "$1"
  for k in $(seq 1 "$count"); do cat "$travel/$k/part"; done | tar -x -C "$1"
  say "put $count part(s) together into $1"
}

receive() {
  local state count missing
  state=$(arrived)
  read -r count missing <<<"$state"
  say "arrived whole: $((count - $(wc -w <<<"$missing"))) of $count part(s)${missing:+; still to come: $missing}; make the next call at once"
}

prepare() { # $1 = --plan or empty
  local plan=${1:-} deno folders
  deno=$(deno_binary)
  mapfile -t folders < <(packages "$deno")
  local ort=node_modules/.deno/onnxruntime-node@1.30.0/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  for f in libonnxruntime.so.1 onnxruntime_binding.node; do
    [ -f "$ort/$f" ] || die "no $ort/$f: onnxruntime-node's Linux binaries are missing"
  done
  rm -rf "$dir"
  mkdir -p "$dir/debs"
  local sha
  sha=$(sha256sum "$deno" | cut -d' ' -f1)
  if [ "$plan" = --plan ]; then
    node_modules_tar "${folders[@]}" >"$dir/node_modules.tar"
  else
    say "compressing Deno ($(mib "$(stat -c %s "$deno")")) and node_modules (xz -9: a few minutes)"
    xz -9 -T0 -c "$deno" >"$dir/deno.xz"
    node_modules_tar "${folders[@]}" | xz -9 -T0 >"$dir/node_modules.tar.xz"
    local lists o
    lists=$(mktemp -d)
    mkdir -p "$lists/partial"
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
    apt-get "${o[@]}" update >&2
    (cd "$dir/debs" && apt-get "${o[@]}" download "${DEBS[@]}" >&2)
    rm -rf "$lists"
  fi
  gather_families "$plan"
  {
    echo "DENO_SHA256=$sha"
    echo "DENO_SOURCE=$deno"
  } >"$dir/manifest.env"
  PLAN=$([ "$plan" = --plan ] && echo true || echo false) DIR="$dir" SHA="$sha" DENO_PATH="$deno" \
    DEBS="${DEBS[*]}" FOLDERS="${folders[*]}" "$deno" eval --no-config '
    const env = (k) => Deno.env.get(k);
    const dir = env("DIR");
    const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile)
      .concat([...Deno.readDirSync(`${dir}/debs`)].map((e) => ({ name: `debs/${e.name}` })))
      .map(({ name }) => ({ name, bytes: Deno.statSync(`${dir}/${name}`).size }));
    const manifest = {
      plan: env("PLAN") === "true",
      created: new Date().toISOString(),
      deno: { version: Deno.version.deno, path: env("DENO_PATH"), sha256: env("SHA"),
        bytes: Deno.statSync(env("DENO_PATH")).size },
      nodeModules: env("FOLDERS").split(" "),
      debs: env("DEBS").split(" "),
      files,
    };
    Deno.writeTextFileSync(`${dir}/manifest.json`, JSON.stringify(manifest, null, 1) + "\n");'
  cut_parts
  if [ "$plan" = --plan ]; then
    say "plan written to $dir (uncompressed; 'prepare' without --plan compresses and downloads)"
  fi
  budget
}

decompress() { # $1 = .xz file, to stdout (Python's lzma where xz is missing)
  if command -v xz >/dev/null; then
    xz -dc "$1"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# Deno into $tmp/bin, node_modules into $tmp/rt beside copies of deno.json and deno.lock (so that
# --node-modules-dir=manual reads it there and the repository's own node_modules is never touched).
unpack() {
  [ -f "$dir/manifest.env" ] ||
    die "no $dir/manifest.env: run 'bash tools/gpu-check.sh prepare' first, and carry its parts"
  # shellcheck source=/dev/null
  source "$dir/manifest.env"
  rm -rf "$tmp/bin" "$tmp/rt"
  mkdir -p "$tmp/bin" "$tmp/rt/node_modules"
  if [ -f "$dir/deno.xz" ]; then
    decompress "$dir/deno.xz" >"$tmp/bin/deno"
  else
    cp "$DENO_SOURCE" "$tmp/bin/deno"
  fi
  chmod +x "$tmp/bin/deno"
  [ "$(sha256sum "$tmp/bin/deno" | cut -d' ' -f1)" = "$DENO_SHA256" ] ||
    die "$tmp/bin/deno differs from the binary prepare gathered"
  if [ -f "$dir/node_modules.tar.xz" ]; then
    decompress "$dir/node_modules.tar.xz" | tar -x -C "$tmp/rt/node_modules"
  else
    tar -x -C "$tmp/rt/node_modules" -f "$dir/node_modules.tar"
  fi
  cp deno.json deno.lock "$tmp/rt/"
}

# infodiff's half, offline: an empty Deno cache, no fetching, node_modules as unpacked.
bundled_deno() { # $1 = script, rest = its arguments
  mkdir -p "$tmp/deno-dir"
  DENO_DIR="$tmp/deno-dir" ONNXRUNTIME_NODE_INSTALL=skip NO_COLOR=1 "$tmp/bin/deno" run \
    --config "$tmp/rt/deno.json" --node-modules-dir=manual --cached-only -A "$@"
}

infodiff_half() { # $@ = gpu_check.ts arguments
  bundled_deno tools/gpu_check.ts "$@"
}

# The families step's pipelines (tools/build_family_realwidth.py: graphs, manifests, configs and
# tokenizers, no weights) and diffusers' wheel, into the bundle when they were built here.
gather_families() { # $1 = --plan or empty
  local family python=out/venv-tools/bin/python
  for family in "${FAMILIES[@]}"; do
    if [ ! -f "$FAMILY_SOURCE/$family/transformer/model.onnx.weights.json" ]; then
      say "families: no $FAMILY_SOURCE/$family (tools/build_family_realwidth.py makes it); the bundle has no families step"
      return 0
    fi
  done
  mkdir -p "$dir/families"
  for family in "${FAMILIES[@]}"; do
    tar -C "$FAMILY_SOURCE" -c --exclude=model.onnx_data "$family" | tar -x -C "$dir/families"
  done
  if [ "${1:-}" != --plan ]; then
    [ -x "$python" ] || die "families: $python is missing (bash tools/python-env.sh) to fetch diffusers' wheel"
    mkdir -p "$dir/wheels"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$dir/wheels" "diffusers==$DIFFUSERS_VERSION" >&2
  fi
  say "families: ${FAMILIES[*]} at real width (weights filled there)${1:+, no wheel in a plan}"
}

# The families step: weights filled from each folder's manifest, infodiff on WebGPU, diffusers on
# CUDA (its wheel installed into $tmp/site), over the same inputs at 1024². `smoke-families` runs it
# here on the CPU at 256² with the tools environment's Python.
families() { # $1 = python, $2 = infodiff's device, $3 = PyTorch's device, $4 = resolution
  local python=${1:-python3} device=${2:-webgpu} torch_device=${3:-cuda} resolution=${4:-1024}
  local work=$tmp/work-families family specs=() status=0
  [ -d "$dir/families" ] || {
    say "families: not in the bundle (prepare found no out/family-realwidth)"
    return 0
  }
  rm -rf "$work" "$tmp/families"
  mkdir -p "$work"
  cp -r "$dir/families" "$tmp/families"
  if [ -d "$dir/wheels" ] && [ "$python" = python3 ]; then
    python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$tmp/site" "$dir"/wheels/*.whl
    export PYTHONPATH=$tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  for family in "${FAMILIES[@]}"; do specs+=("$family=$tmp/families/$family"); done
  stage "family weights" "$python" tools/family_weights.py "${specs[@]#*=}" || return 1
  stage "infodiff families on $device" bundled_deno tools/gpu_check_families.ts --work "$work" \
    --device "$device" --batches "$family_batches" --resolution "$resolution" "${specs[@]}" \
    >/dev/null || say "infodiff's families half failed; diffusers' still runs"
  stage "diffusers families on $torch_device" "$python" tools/gpu_check_families.py --work "$work" \
    --device "$torch_device" --batches "$family_batches" || status=$?
  if [ -n "${OUT:-}" ]; then
    cp "$work/summary.md" "$OUT/summary-families.md" 2>/dev/null || true
    cp "$work/infodiff-families.json" "$OUT/" 2>/dev/null || true
  fi
  return "$status"
}

smoke() {
  assemble "$tmp/assembled"
  dir=$tmp/assembled
  unpack
  rm -rf "$tmp/smoke"
  infodiff_half --work "$tmp/smoke" --device cpu --batches 1,4 \
    fp32=fixtures/models/sd-vpred fp16=fixtures/models/sd-fp16 >/dev/null
  for f in inputs.json noisy.f32 timesteps.i32 hidden.f32 fp32.f32 fp16.f32 infodiff.json; do
    [ -s "$tmp/smoke/$f" ] || die "smoke: no $tmp/smoke/$f"
  done
  say "smoke: infodiff's half ran from the parts put together, offline, on the CPU ($tmp/smoke)"
}

# The Vulkan loader from the carried .debs where the machine has none, and NVIDIA's ICD.
vulkan() {
  if ! ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null; then
    for f in "$dir"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
  local egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$egl" ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
  fi
}

stage() { # $1 = name, rest = command; prints its wall time
  local name=$1 start=$SECONDS status=0
  shift
  say "── $name"
  "$@" || status=$?
  say "── $name: $((SECONDS - start)) s (status $status; $SECONDS s in all)"
  return "$status"
}

run() {
  local status=0
  export PYTHONUNBUFFERED=1
  stage assemble assemble "$dir"
  stage unpack unpack
  stage vulkan vulkan
  nvidia-smi -L || true
  if [[ ,$steps, == *,sd15,* ]]; then sd15 || status=$?; fi
  if [[ ,$steps, == *,families,* ]]; then families || status=$?; fi
  if [[ ,$steps, == *,glue,* ]]; then stage "glue at the families' sizes" glue || status=$?; fi
  return "$status"
}

# The host-side glue per transformer item at SDXL's, SD 3's and FLUX.1's real tensor sizes (`deno
# task bench`'s familyGlue: near-free graphs on the CPU), on the GPU machine's own processor, where
# issue 24's 0.1 ms is to be met; the 2-core development machine's floor is 0.41 ms.
glue() {
  local into=${OUT:-$tmp}
  bundled_deno bench/onnx.ts families >"$into/glue-families.json"
  say "glue: $into/glue-families.json"
}

# The SD-1.5-sized UNet: built there, fp32 and fp16, infodiff on WebGPU, PyTorch on CUDA.
sd15() {
  local work=$tmp/work model=$tmp/sd15 status=0
  rm -rf "$work"
  mkdir -p "$work"
  [ -f "$model/unet/model.onnx" ] ||
    stage "export fp32" python3 tools/build_sd15_benchmark.py "$model" >/dev/null
  [ -f "$model-fp16/unet/model.onnx" ] ||
    stage "convert fp16" python3 tools/build_sd15_benchmark.py "$model-fp16" --fp16 --from "$model" >/dev/null
  stage "infodiff on WebGPU" infodiff_half --work "$work" --device webgpu --batches "$batches" \
    fp32="$model" fp16="$model-fp16" >/dev/null || say "infodiff's half failed; PyTorch's still runs"
  stage "PyTorch on CUDA" python3 tools/gpu_check.py --work "$work" --batches "$batches" || status=$?
  if [ -n "${OUT:-}" ]; then cp "$work"/summary.* "$work"/infodiff.json "$OUT"/ 2>/dev/null || true; fi
  return "$status"
}

case "${1:-}" in
prepare) prepare "${2:-}" ;;
budget) budget ;;
smoke) smoke ;;
receive) receive ;;
smoke-families)
  assemble "$tmp/assembled"
  dir=$tmp/assembled
  unpack
  family_batches=1
  families out/venv-tools/bin/python cpu cpu 256
  ;;
run)
  if [ -n "${OUT:-}" ]; then
    set -o pipefail
    run 2>&1 | tee "$OUT/gpu-check.log"
  else
    run
  fi
  ;;
*) die "usage: bash tools/gpu-check.sh prepare [--plan] | budget | smoke | smoke-families | receive | run" ;;
esac
