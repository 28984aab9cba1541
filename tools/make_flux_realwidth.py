"""A FLUX.1 transformer at its real width with few blocks and random weights, exported to ONNX as
optimum exports FLUX.1's (issue 25, part 5: peak memory of the joint-attention maps at real size,
measured by bench/joint-attention-memory.ts --model).

FLUX.1-dev's transformer config but the depth: width 3,072 (24 heads × 128), joint_attention_dim
4,096 (T5-XXL), pooled_projection_dim 768 (CLIP-L), in_channels 64 (2×2 patches of 16 latent
channels), guidance_embeds, rotary axes (16, 56, 56); with --double and --single blocks instead of
FLUX.1's 19 and 38 (default 1 and 1: 546 M parameters, 2.2 GB of float32; 2 + 2: 1.03 G, 4.1 GB,
whose run with every layer's maps peaks at 16 GB, see docs/performance.md). The weights are
diffusers' own initialisation under torch.manual_seed(--seed) (default 0): the block's memory and
arithmetic are FLUX.1's, its outputs mean nothing.

Exported by make_joint_attention_reference.export_flux_transformer (TorchScript, opset 18, optimum's
patches: the attention is unfused, its Softmax nodes named `/transformer_blocks.N/attn/Softmax` and
`/single_transformer_blocks.N/attn/Softmax`), then saved as optimum saves a large export: the graph
in model.onnx, every weight in one model.onnx_data beside it (external data). The export is checked
against PyTorch on a small input (16 image tokens, 8 text tokens) with onnxruntime, as optimum's
validation does.

    out/venv-tools/bin/python tools/make_flux_realwidth.py [--double 1] [--single 1] [--seed 0] \\
        [--out out/flux-realwidth/transformer]

Written under out/ (ignored by git, never committed).
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from make_joint_attention_reference import FLUX_INPUTS, export_flux_transformer  # noqa: E402
from diffusers import FluxTransformer2DModel  # noqa: E402

# FLUX.1-dev's transformer/config.json, but num_layers and num_single_layers
FLUX_DEV = dict(patch_size=1, in_channels=64, attention_head_dim=128, num_attention_heads=24,
                joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                axes_dims_rope=(16, 56, 56))


def small_inputs(side=4, text=8):
    """Fixed inputs of a side×side packed latent and `text` T5 tokens, as FluxPipeline feeds them."""
    g = torch.Generator().manual_seed(1)
    img_ids = torch.zeros(side * side, 3)
    img_ids[:, 1], img_ids[:, 2] = torch.arange(side * side) // side, torch.arange(side * side) % side
    return dict(hidden_states=torch.randn(1, side * side, 64, generator=g),
                encoder_hidden_states=torch.randn(1, text, 4096, generator=g),
                pooled_projections=torch.randn(1, 768, generator=g), timestep=torch.tensor([0.5]),
                img_ids=img_ids, txt_ids=torch.zeros(text, 3), guidance=torch.tensor([1.0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--double", type=int, default=1)
    parser.add_argument("--single", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "flux-realwidth", "transformer"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    tr = FluxTransformer2DModel(num_layers=args.double, num_single_layers=args.single, **FLUX_DEV).eval()
    parameters = sum(p.numel() for p in tr.parameters())
    inputs = small_inputs()
    os.makedirs(args.out, exist_ok=True)
    graph = os.path.join(args.out, "model.onnx")
    with torch.no_grad():
        expected = tr(**inputs, return_dict=False)[0].numpy()
        with tempfile.TemporaryDirectory(dir=os.path.dirname(args.out)) as work:
            export_flux_transformer(tr, inputs, os.path.join(work, "model.onnx"))
            tr.save_config(args.out)
            del tr
            # optimum's large-model save: one external data file beside the graph
            model = onnx.load(os.path.join(work, "model.onnx"), load_external_data=True)
            for stale in ("model.onnx", "model.onnx_data"):
                if os.path.exists(os.path.join(args.out, stale)):
                    os.remove(os.path.join(args.out, stale))
            onnx.save_model(model, graph, save_as_external_data=True, all_tensors_to_one_file=True,
                            location="model.onnx_data", size_threshold=1024)
            del model
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    got = session.run(None, {n: inputs[n].numpy() for n in FLUX_INPUTS})[0]
    error = float(np.max(np.abs(got - expected)))
    print(f"{args.double} double + {args.single} single blocks, {parameters:,} parameters, seed {args.seed}")
    print(f"onnxruntime vs PyTorch on 16 image + 8 text tokens: max |diff| {error:.2e} "
          f"(output max |value| {float(np.max(np.abs(expected))):.2f})")
    assert np.all(np.isfinite(got)) and error < 1e-3, error
    softmax = [n.name for n in onnx.load(graph, load_external_data=False).graph.node if n.op_type == "Softmax"]
    print("Softmax nodes:", softmax)
    for name in ("model.onnx", "model.onnx_data"):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name)):,} bytes")


if __name__ == "__main__":
    main()
