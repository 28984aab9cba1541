"""Export trained shapes-tiny weights (.npz) to ONNX in the Stable Diffusion folder layout.

    model_index.json, scheduler/scheduler_config.json, tokenizer/, text_encoder/model.onnx,
    unet/model.onnx (+ unet/config.json, text_encoder/config.json); no VAE: a pixel-space model.

Runs with Debian's torch 1.13 (`/usr/bin/python3`). Attention is unfused: each cross-attention
layer is one Softmax node named .../attn2/Softmax with output [B*heads, HW, context_length].
Writes a verification file (fixed inputs and torch's outputs) that verify_onnx.ts replays with
onnxruntime; when the Python onnxruntime package exists it is checked here too.

Usage: python3 export.py WEIGHTS.npz TOKENIZER_DIR OUT_DIR [--verify-file FILE]
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ShapesTiny, count_parameters  # noqa: E402
from tokenizer import ShapesTokenizer  # noqa: E402
from weights import load_npz  # noqa: E402

OPSET = 17


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def softmax_nodes(path):
    """(name, inferred output shape) of every Softmax node."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        dims = [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    return [(n.name, shapes.get(n.output[0])) for n in model.graph.node if n.op_type == "Softmax"]


def io_signature(path):
    model = onnx.load(path)
    types = {1: "float32", 7: "int64", 6: "int32", 10: "float16"}

    def describe(v):
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        return {"name": v.name, "type": types.get(v.type.tensor_type.elem_type, "?"), "shape": dims}
    return {"inputs": [describe(v) for v in model.graph.input],
            "outputs": [describe(v) for v in model.graph.output]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("tokenizer")
    ap.add_argument("out")
    ap.add_argument("--verify-file", default="/tmp/shapes_tiny_verify.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg, state = load_npz(args.weights)
    model = ShapesTiny(cfg)
    model.load_state_dict(state)
    model.eval()
    tok = ShapesTokenizer(args.tokenizer)
    assert tok.context_length == cfg["context_length"], "tokenizer and weights disagree on context length"
    assert len(tok.encoder) == cfg["vocab_size"], "tokenizer and weights disagree on vocabulary size"
    out = args.out
    os.makedirs(out, exist_ok=True)

    # tokenizer/
    tok_out = os.path.join(out, "tokenizer")
    os.makedirs(tok_out, exist_ok=True)
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        src, dst = os.path.join(args.tokenizer, name), os.path.join(tok_out, name)
        if not os.path.exists(dst) or not os.path.samefile(src, dst):
            shutil.copyfile(src, dst)

    prompts = ["a red circle", "a small green triangle above a yellow circle", ""]
    ids = torch.tensor([tok.input_ids(p) for p in prompts], dtype=torch.long)
    L, D = cfg["context_length"], cfg["text_width"]

    # text_encoder/model.onnx
    te_path = os.path.join(out, "text_encoder", "model.onnx")
    os.makedirs(os.path.dirname(te_path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model.text_encoder, (ids,), te_path,
                          input_names=["input_ids"], output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"},
                                        "pooler_output": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
        hidden, pooled = model.text_encoder(ids)

    # unet/model.onnx
    sample = torch.randn(3, 3, 32, 32)
    timestep = torch.tensor([999, 354, 0], dtype=torch.long)
    unet_path = os.path.join(out, "unet", "model.onnx")
    os.makedirs(os.path.dirname(unet_path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model.unet, (sample, timestep, hidden), unet_path,
                          input_names=["sample", "timestep", "encoder_hidden_states"],
                          output_names=["out_sample"],
                          dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"},
                                        "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
        eps = model.unet(sample, timestep, hidden)
    for p in (te_path, unet_path):
        onnx.checker.check_model(onnx.load(p))

    # configs
    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.14.0",
        "_infodiff_note": "shapes-tiny: pixel-space (no VAE) text-to-image model trained on the shapes world",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "OnnxRuntimeModel"],
    })
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), {
        "_class_name": "DDIMScheduler",
        "_diffusers_version": "0.14.0",
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "trained_betas": None,
    })
    write_json(os.path.join(out, "unet", "config.json"), {
        "_class_name": "ShapesTinyUNet",
        "sample_size": 32,
        "in_channels": 3,
        "out_channels": 3,
        "cross_attention_dim": D,
        "block_out_channels": cfg["channels"],
        "attention_head_dim": cfg["channels"][1] // cfg["heads"],
        "num_attention_heads": cfg["heads"],
        "parameters": count_parameters(model.unet),
    })
    write_json(os.path.join(out, "text_encoder", "config.json"), {
        "_class_name": "ShapesTinyTextEncoder",
        "hidden_size": D,
        "num_hidden_layers": cfg["text_layers"],
        "num_attention_heads": cfg["text_heads"],
        "max_position_embeddings": L,
        "vocab_size": cfg["vocab_size"],
        "bos_token_id": tok.bos_id,
        "eos_token_id": tok.eos_id,
        "pad_token_id": tok.pad_id,
        "causal": False,
        "parameters": count_parameters(model.text_encoder),
    })

    # checks and report
    soft = softmax_nodes(unet_path)
    cross = [s for s in soft if "/attn2/" in s[0]]
    assert cross, "no Softmax node under /attn2/ in the UNet"
    print("text_encoder", json.dumps(io_signature(te_path)))
    print("unet", json.dumps(io_signature(unet_path)))
    print("Softmax nodes (name, inferred output shape):")
    for name, shape in soft:
        print("  ", name, shape)
    total = 0
    for root, _, files in os.walk(out):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print(f"folder size {total / 1e6:.3f} MB; params {count_parameters(model)}")

    verify = {
        "input_ids": ids.flatten().tolist(), "ids_shape": list(ids.shape),
        "last_hidden_state": hidden.flatten().tolist(), "pooler_output": pooled.flatten().tolist(),
        "sample": sample.flatten().tolist(), "timestep": timestep.tolist(),
        "out_sample": eps.flatten().tolist(), "sample_shape": list(sample.shape),
        "hidden_shape": list(hidden.shape),
    }
    with open(args.verify_file, "w") as f:
        json.dump(verify, f)
    # a copy of the UNet with the cross-attention probabilities as extra outputs (what the
    # attention baseline does), so the verifier can check their shapes
    probe = onnx.load(unet_path)
    for name, _ in cross:
        node = next(n for n in probe.graph.node if n.name == name)
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
    onnx.save(probe, args.verify_file.replace(".json", "_attn_probe.onnx"))
    print("verification data written to", args.verify_file)
    try:
        import onnxruntime as ort
    except ImportError:
        print("python onnxruntime not installed: run verify_onnx.ts with Deno to compare")
        return
    te = ort.InferenceSession(te_path)
    un = ort.InferenceSession(unet_path)
    h2, p2 = te.run(None, {"input_ids": ids.numpy()})
    e2 = un.run(None, {"sample": sample.numpy(), "timestep": timestep.numpy(),
                       "encoder_hidden_states": hidden.numpy()})[0]
    for name, a, b in (("last_hidden_state", h2, hidden), ("pooler_output", p2, pooled), ("out_sample", e2, eps)):
        print(f"onnxruntime vs torch {name}: max abs diff {np.abs(a - b.numpy()).max():.2e}")


if __name__ == "__main__":
    main()
