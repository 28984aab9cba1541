#!/usr/bin/env bash
# The GPU check (docs/models.md, "GPUs: WebGPU and CUDA"). On a machine with an NVIDIA GPU and no network:
# the SD-1.5-sized UNet of tools/build_sd15_benchmark.py (random weights, exported to ONNX there, fp32
# and fp16) through infodiff on WebGPU (tools/gpu_check.ts) and through PyTorch eager on CUDA
# (tools/gpu_check.py); the noise predictions are compared and items/s printed at batch 1, 8 and 32.
#
#   bash tools/gpu-check.sh prepare         here: gathers out/gpu-check/ (Deno and onnxruntime-node's
#                                           Linux binaries, xz-compressed; the Vulkan loader .debs)
#                                           and checks that it travels: tree + out/gpu-check ≤ 64 MiB
#   bash tools/gpu-check.sh prepare --plan  here, offline and in seconds: the manifest and an
#                                           uncompressed node_modules.tar, nothing downloaded
#   bash tools/gpu-check.sh budget          the size check alone
#   bash tools/gpu-check.sh smoke           here: the run stage's infodiff half from the bundle, with
#                                           an empty Deno cache and --cached-only, on the CPU
#   bash tools/gpu-check.sh run             on the GPU machine: the device tool's command
#
# What the GPU machine needs beyond the tree: Python with PyTorch, onnx and NumPy (the lent machines
# have them), an NVIDIA driver with its Vulkan ICD. Everything else comes from out/gpu-check.
# Environment: GPU_CHECK_DIR (default out/gpu-check), GPU_CHECK_TMP (default /tmp/gpu-check),
# DENO (default: npx's deno 2.9.6), GPU_CHECK_BATCHES (default 1,8,32).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=${GPU_CHECK_DIR:-out/gpu-check}
tmp=${GPU_CHECK_TMP:-/tmp/gpu-check}
batches=${GPU_CHECK_BATCHES:-1,8,32}
BUDGET=$((64 * 1024 * 1024)) # what the device tool carries: the tree and the carried paths
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

# Bytes the device tool sends: tracked and untracked-not-ignored files, plus the carried folder.
budget() {
  local tree carry total
  tree=$(git ls-files -z --cached --others --exclude-standard |
    xargs -0 stat -c %s 2>/dev/null | sum || true)
  carry=$(find "$dir" -type f -printf '%s\n' 2>/dev/null | sum)
  total=$((tree + carry))
  if [ "$total" -gt "$BUDGET" ]; then
    die "over budget: the tree $(mib "$tree") + $dir $(mib "$carry") = $(mib "$total") > $(mib "$BUDGET")"
  fi
  say "travels: the tree $(mib "$tree") + $dir $(mib "$carry") = $(mib "$total") ≤ $(mib "$BUDGET")"
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
  if [ "$plan" = --plan ]; then
    say "plan written to $dir (uncompressed; 'prepare' without --plan compresses, downloads and checks the size)"
  else
    budget
  fi
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
    die "no $dir/manifest.env: run 'bash tools/gpu-check.sh prepare' first, and carry $dir"
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
infodiff_half() { # $@ = gpu_check.ts arguments
  mkdir -p "$tmp/deno-dir"
  DENO_DIR="$tmp/deno-dir" ONNXRUNTIME_NODE_INSTALL=skip NO_COLOR=1 "$tmp/bin/deno" run \
    --config "$tmp/rt/deno.json" --node-modules-dir=manual --cached-only -A tools/gpu_check.ts "$@"
}

smoke() {
  unpack
  rm -rf "$tmp/smoke"
  infodiff_half --work "$tmp/smoke" --device cpu --batches 1,4 \
    fp32=fixtures/models/sd-vpred fp16=fixtures/models/sd-fp16 >/dev/null
  for f in inputs.json noisy.f32 timesteps.i32 hidden.f32 fp32.f32 fp16.f32 infodiff.json; do
    [ -s "$tmp/smoke/$f" ] || die "smoke: no $tmp/smoke/$f"
  done
  say "smoke: infodiff's half ran from the bundle, offline, on the CPU ($tmp/smoke)"
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
  local work=$tmp/work model=$tmp/sd15 status=0
  export PYTHONUNBUFFERED=1
  stage unpack unpack
  stage vulkan vulkan
  nvidia-smi -L || true
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
run)
  if [ -n "${OUT:-}" ]; then
    set -o pipefail
    run 2>&1 | tee "$OUT/gpu-check.log"
  else
    run
  fi
  ;;
*) die "usage: bash tools/gpu-check.sh prepare [--plan] | budget | smoke | run" ;;
esac
