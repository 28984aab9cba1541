#!/usr/bin/env bash
# The reference implementation's environment for the head-to-head (tools/headtohead.py,
# bench/headtohead.ts), all under out/ (ignored by git):
#
#   bash tools/python-env.sh && bash tools/reference-env.sh [INFO_DECOMP_GIT]
#
# - out/venv-ref: out/venv-tools (torch 2.9.1, diffusers 0.36.0, transformers 4.57.6 from PyPI),
#   read through a .pth file, plus what the reference's modules import and venv-tools lacks:
#   utils/itdiffusion.py pytorch-lightning; utils/utils.py pandas, seaborn, matplotlib,
#   pycocotools, torchvision; utils/aro_datasets.py (imported by utils/__init__.py) easydict.
# - out/info-decomp: kxh001/Info-Decomp's tree at the commit measured, from a clone or a bare git
#   directory (INFO_DECOMP_GIT, default the GitHub repository).
set -euo pipefail
cd "$(dirname "$0")/.."
COMMIT=534857249592893bf8868041c377b3397514f638
SOURCE=${1:-https://github.com/kxh001/Info-Decomp}
[ -f out/venv-tools/.ready ] || { echo "out/venv-tools is not ready: run tools/python-env.sh" >&2; exit 1; }
VENV=out/venv-ref
rm -f "$VENV/.ready"
PY=$(readlink -f out/venv-tools/bin/python3)
"$PY" -m venv "$VENV"
SITE=$("$VENV/bin/python" -c "import site; print(site.getsitepackages()[0])")
"out/venv-tools/bin/python" -c "import site; print(site.getsitepackages()[0])" > "$SITE/zz-venv-tools.pth"
"$VENV/bin/pip" install --quiet \
  pytorch-lightning==2.6.6 \
  lightning-utilities==0.15.3 \
  torchmetrics==1.9.0 \
  pandas==3.1.1 \
  seaborn==0.13.2 \
  matplotlib==3.11.2 \
  pycocotools==2.0.11 \
  torchvision==0.24.1 \
  easydict==1.14
if [ -d "$SOURCE" ]; then GIT_DIR_ARG=("-C" "$SOURCE"); else
  rm -rf out/info-decomp.git && git clone --quiet --bare "$SOURCE" out/info-decomp.git
  GIT_DIR_ARG=("-C" "out/info-decomp.git")
fi
rm -rf out/info-decomp && mkdir -p out/info-decomp
git "${GIT_DIR_ARG[@]}" archive "$COMMIT" | tar -x -C out/info-decomp
(cd out/info-decomp && "../../$VENV/bin/python" -c "import torch, diffusers, utils.itdiffusion, utils.stablediffusion; print('torch', torch.__version__, 'diffusers', diffusers.__version__)")
touch "$VENV/.ready"
