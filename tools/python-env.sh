#!/usr/bin/env bash
# Creates the Python environment the fixture tools run in: out/venv-tools (ignored by git).
#
#   bash tools/python-env.sh            # then: out/venv-tools/bin/python tools/<tool>.py
#
# Tests and CI never need it: what a test reads is committed. The versions are pinned so a rebuilt
# fixture is the same fixture. They are the newest that install together:
# - optimum-onnx 0.1.0 (the exporter) requires optimum ~= 2.1.0 and transformers < 4.58, so
#   transformers is 4.57.6 (not 5.x), with the tokenizers and huggingface-hub it accepts;
# - diffusers 0.36.0, torch 2.9.1, onnx 1.20.1 and onnxruntime 1.23.2 are the releases of the same
#   months (torch's TorchScript exporter, which optimum-onnx calls, is still there in 2.9).
# torch from PyPI is the CUDA build (several GB); the tools run it on the CPU.
# `out/venv-tools/.ready` marks a finished install (other tools and helpers wait for it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=out/venv-tools
rm -f "$VENV/.ready"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet \
  torch==2.9.1 \
  diffusers==0.36.0 \
  transformers==4.57.6 \
  tokenizers==0.22.1 \
  optimum==2.1.0 \
  optimum-onnx==0.1.0 \
  onnx==1.20.1 \
  onnxruntime==1.23.2 \
  sentencepiece==0.2.1 \
  protobuf==6.33.2 \
  accelerate==1.12.0 \
  numpy==2.3.5 \
  pillow==12.0.0 \
  fonttools==4.69.1
"$VENV/bin/python" -c "import torch, diffusers, transformers, optimum.exporters.onnx, onnxruntime, sentencepiece; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
touch "$VENV/.ready"
