"""A real-size benchmark model: a UNet with exactly Stable Diffusion 1.5's architecture (diffusers'
UNet2DConditionModel with SD 1.5's config: 859,520,964 parameters), random weights, defined once
here in PyTorch and exported to ONNX with external weights, in the SD folder layout with small
stand-ins of the right shapes for the text encoder (CLIP's vocabulary, 768-wide states) and the
VAE (8× down/up). Generated on demand, never committed (3.4 GB fp32).

  /usr/bin/python3 tools/build_sd15_benchmark.py out/sd15-bench          # fp32 export
  /usr/bin/python3 tools/build_sd15_benchmark.py out/sd15-bench-fp16 --fp16 [--from out/sd15-bench]
  /usr/bin/python3 tools/build_sd15_benchmark.py out/small-fp16 --small --fp16   # check the conversion
  /usr/bin/python3 tools/build_sd15_benchmark.py --count                 # parameters only
  /usr/bin/python3 tools/build_sd15_benchmark.py --time-torch 3 [--device cuda] [--batch 1]

--time-torch runs the very same network (same seed, same weights) under PyTorch eager and prints
items per second as JSON, so onnxruntime and PyTorch are compared on one network.
Needs Debian's python3-torch and python3-onnx.
"""
import argparse
import inspect
import json
import math
import os
import shutil
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SD15_PARAMETERS = 859_520_964


def group_norm(channels, eps=1e-5):
    return nn.GroupNorm(32, channels, eps=eps)


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of t (320 channels, cos first: flip_sin_to_cos) → 1280 (as SD 1.5's,
    whatever the block widths: ResnetBlock's time projection takes 1280)."""

    def __init__(self):
        super().__init__()
        self.linear_1 = nn.Linear(320, 1280)
        self.linear_2 = nn.Linear(1280, 1280)

    def forward(self, t):
        half = 160
        exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        args = t.float()[:, None] * torch.exp(exponent)[None, :]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(self.linear_1.weight.dtype)
        return self.linear_2(F.silu(self.linear_1(emb)))


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(1280, cout)
        self.norm2 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    """Eager attention: softmax(QKᵀ/√d) stays a Softmax node (what the attention tap reads)."""

    def __init__(self, dim, context_dim, heads=8):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, dim = x.shape
        d = dim // self.heads

        def split(t):
            return t.reshape(b, -1, self.heads, d).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        probs = torch.softmax(q @ k.transpose(-1, -2) * d ** -0.5, dim=-1)
        out = (probs @ v).transpose(1, 2).reshape(b, n, dim)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim * 8)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class TransformerBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), Attention(dim, dim)
        self.norm2, self.attn2 = nn.LayerNorm(dim), Attention(dim, 768)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(GEGLU(dim), nn.Identity(), nn.Linear(dim * 4, dim))

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = group_norm(dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim)])
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        for block in self.transformer_blocks:
            y = block(y, context)
        y = y.reshape(b, h, w, c).permute(0, 3, 1, 2)
        return self.proj_out(y) + x


class Down(nn.Module):
    def __init__(self, cin, cout, attention, downsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin, cout), ResnetBlock(cout, cout)])
        self.attentions = nn.ModuleList([Transformer2D(cout) for _ in range(2)]) if attention else None
        self.downsample = nn.Conv2d(cout, cout, 3, stride=2, padding=1) if downsample else None

    def forward(self, x, temb, context, skips):
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            skips.append(x)
        if self.downsample is not None:
            x = self.downsample(x)
            skips.append(x)
        return x


class Up(nn.Module):
    def __init__(self, cin, cout, prev, attention, upsample):
        super().__init__()
        ins = [prev + cout, cout + cout, cout + cin]
        self.resnets = nn.ModuleList([ResnetBlock(i, cout) for i in ins])
        self.attentions = nn.ModuleList([Transformer2D(cout) for _ in range(3)]) if attention else None
        self.upsample = nn.Conv2d(cout, cout, 3, padding=1) if upsample else None

    def forward(self, x, temb, context, skips):
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsample is not None:
            x = self.upsample(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class Sd15Unet(nn.Module):
    """SD 1.5's UNet; `ch` other than (320, 640, 1280, 1280) gives a small one of the same shape."""

    def __init__(self, ch=(320, 640, 1280, 1280)):
        super().__init__()
        ch = list(ch)
        self.time_embedding = TimestepEmbedding()
        self.conv_in = nn.Conv2d(4, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([
            Down(ch[0], ch[0], True, True), Down(ch[0], ch[1], True, True),
            Down(ch[1], ch[2], True, True), Down(ch[2], ch[3], False, False),
        ])
        self.mid_resnet_1 = ResnetBlock(ch[3], ch[3])
        self.mid_attention = Transformer2D(ch[3])
        self.mid_resnet_2 = ResnetBlock(ch[3], ch[3])
        rev = list(reversed(ch))
        self.up_blocks = nn.ModuleList([
            Up(rev[min(i + 1, 3)], rev[i], rev[max(i - 1, 0)], i > 0, i < 3) for i in range(4)
        ])
        self.conv_norm_out = group_norm(ch[0])
        self.conv_out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        temb = self.time_embedding(timestep)
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x = block(x, temb, encoder_hidden_states, skips)
        x = self.mid_resnet_2(self.mid_attention(self.mid_resnet_1(x, temb), encoder_hidden_states), temb)
        for block in self.up_blocks:
            x = block(x, temb, encoder_hidden_states, skips)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class TextEncoder(nn.Module):
    """A stand-in with CLIP ViT-L/14's I/O: input_ids [B, 77] → last_hidden_state [B, 77, 768]."""

    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(49408, 768)
        self.position_embedding = nn.Parameter(torch.randn(77, 768) * 0.01)
        self.norm = nn.LayerNorm(768)

    def forward(self, input_ids):
        return self.norm(self.token_embedding(input_ids) + self.position_embedding)


class VaeEncoder(nn.Module):
    """sample [B, 3, 512, 512] → latent_parameters [B, 8, 64, 64] (mean ‖ log-variance)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 8, stride=8)

    def forward(self, sample):
        return self.conv(sample)


class VaeDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 1)

    def forward(self, latent_sample):
        return self.conv(F.interpolate(latent_sample, scale_factor=8.0, mode="nearest"))


SMALL = (32, 64, 64, 64)


def unet(seed=0, small=False):
    torch.manual_seed(seed)
    model = Sd15Unet(SMALL if small else (320, 640, 1280, 1280)).eval()
    with torch.no_grad():  # random weights of a sensible scale (no NaNs at any timestep)
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0, 0.02)
            else:  # norm gains 1, every bias 0
                p.fill_(1.0 if name.endswith("weight") else 0.0)
    return model


def export(model, args, path, inputs, outputs, axes):
    import onnx

    tmp = path + ".parts"
    os.makedirs(tmp, exist_ok=True)
    raw = os.path.join(tmp, "model.onnx")
    # the TorchScript exporter: to_fp16 finds nodes by its names (PyTorch ≥ 2.9 defaults to dynamo)
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(model, args, raw, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True, **legacy)
    graph = onnx.load(raw)  # torch writes one file per tensor above 2 GB: gather them into one
    onnx.save_model(graph, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(path) + "_data", size_threshold=1024)
    shutil.rmtree(tmp)


def to_fp16(model):
    """The fp32 UNet graph with fp16 weights, activations and I/O. The timestep's sinusoidal
    embedding stays fp32 (sin/cos of t·ω up to 1000 rad need it, as diffusers computes it) and is
    cast to fp16 before linear_1; Resize's scales stay fp32 (the operator requires it)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    order = [n.name for n in graph.node]
    first_linear = order.index("/time_embedding/linear_1/Gemm")
    keep32 = {n.name for n in graph.node[:first_linear] if n.name.startswith("/time_embedding/")}
    resize_params = {i for n in graph.node if n.op_type == "Resize" for i in n.input[1:3] if i}
    half = lambda t: numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name)
    for i, t in enumerate(graph.initializer):
        if t.data_type == TensorProto.FLOAT and t.name not in resize_params:
            graph.initializer[i].CopyFrom(half(t))
    for node in graph.node:
        if node.name in keep32:
            continue
        if node.op_type == "Constant" and node.output[0] not in resize_params:
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(half(a.t))
        if node.op_type == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16
    # the embedding leaves fp32 through one Cast in front of linear_1
    gemm = graph.node[first_linear]
    cast = helper.make_node("Cast", [gemm.input[0]], [gemm.input[0] + "_fp16"],
                            name="/time_embedding/CastToFp16", to=TensorProto.FLOAT16)
    gemm.input[0] = gemm.input[0] + "_fp16"
    graph.node.insert(first_linear, cast)
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    return model


def convert_folder(source, folder):
    """A copy of an fp32 benchmark folder with its UNet converted to fp16 (no re-export)."""
    import onnx

    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("model.onnx_data"), dirs_exist_ok=True)
    path = os.path.join(folder, "unet", "model.onnx")
    graph = to_fp16(onnx.load(os.path.join(source, "unet", "model.onnx")))
    onnx.save_model(graph, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=1024)
    for part in ["text_encoder", "vae_encoder", "vae_decoder"]:
        data = os.path.join(source, part, "model.onnx_data")
        if os.path.exists(data):
            shutil.copy(data, os.path.join(folder, part, "model.onnx_data"))
    print(folder)


def build(folder, fp16, small=False):
    os.makedirs(folder, exist_ok=True)
    for part in ["unet", "text_encoder", "vae_encoder", "vae_decoder", "scheduler", "tokenizer"]:
        os.makedirs(os.path.join(folder, part), exist_ok=True)
    batch = {0: "batch"}
    t0 = time.time()
    example = (torch.randn(1, 4, 64, 64), torch.tensor([500]), torch.randn(1, 77, 768))
    export(unet(small=small), example,
           os.path.join(folder, "unet", "model.onnx"),
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": batch, "timestep": batch, "encoder_hidden_states": batch, "out_sample": batch})
    print(f"unet exported in {time.time() - t0:.0f} s", file=sys.stderr)
    if fp16:
        import onnx
        path = os.path.join(folder, "unet", "model.onnx")
        graph = to_fp16(onnx.load(path))
        os.remove(path + "_data")
        onnx.save_model(graph, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx_data", size_threshold=1024)
        print("unet converted to fp16", file=sys.stderr)
    torch.manual_seed(1)
    export(TextEncoder().eval(), (torch.zeros(1, 77, dtype=torch.int64),),
           os.path.join(folder, "text_encoder", "model.onnx"), ["input_ids"], ["last_hidden_state"],
           {"input_ids": batch, "last_hidden_state": batch})
    export(VaeEncoder().eval(), (torch.randn(1, 3, 512, 512),),
           os.path.join(folder, "vae_encoder", "model.onnx"), ["sample"], ["latent_parameters"],
           {"sample": batch, "latent_parameters": batch})
    export(VaeDecoder().eval(), (torch.randn(1, 4, 64, 64),),
           os.path.join(folder, "vae_decoder", "model.onnx"), ["latent_sample"], ["sample"],
           {"latent_sample": batch, "sample": batch})
    for name in ["vocab.json", "merges.txt"]:
        shutil.copy(os.path.join(ROOT, "fixtures", "clip", name), os.path.join(folder, "tokenizer", name))
    write(folder, "tokenizer/special_tokens_map.json", {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"})
    write(folder, "tokenizer/tokenizer_config.json", {"model_max_length": 77})
    write(folder, "scheduler/scheduler_config.json", {
        "_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "beta_end": 0.012, "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "steps_offset": 1, "set_alpha_to_one": False, "skip_prk_steps": True})
    write(folder, "vae_decoder/config.json", {"scaling_factor": 0.18215, "sample_size": 512})
    write(folder, "model_index.json", {
        "_class_name": "OnnxStableDiffusionPipeline",
        "_note": "random-weight benchmark model with Stable Diffusion 1.5's UNet architecture "
                 "(tools/build_sd15_benchmark.py); text encoder and VAE are shape stand-ins",
        "unet": ["diffusers", "OnnxRuntimeModel"], "text_encoder": ["diffusers", "OnnxRuntimeModel"],
        "vae_encoder": ["diffusers", "OnnxRuntimeModel"], "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"]})
    print(folder)


def write(folder, name, value):
    with open(os.path.join(folder, name), "w") as f:
        json.dump(value, f, indent=1)


def time_torch(runs, device, batch, threads):
    torch.set_num_threads(threads)  # as onnxruntime, every core (Debian's torch defaults to 1 here)
    model = unet().to(device)
    x = torch.randn(batch, 4, 64, 64, device=device)
    t = torch.full((batch,), 500, device=device)
    c = torch.randn(batch, 77, 768, device=device)
    with torch.no_grad():
        model(x, t, c)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.time()
        for _ in range(runs):
            model(x, t, c)
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = (time.time() - start) / runs
    print(json.dumps({"runtime": f"pytorch {torch.__version__} eager", "device": device,
                      "batch": batch, "secondsPerCall": seconds, "itemsPerSecond": batch / seconds,
                      "threads": torch.get_num_threads()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--from", dest="source",
                        help="with --fp16: convert this fp32 folder's UNet instead of exporting again")
    parser.add_argument("--small", action="store_true",
                        help="block widths 32/64/64/64 instead of 320/640/1280/1280 (to check the fp16 conversion)")
    parser.add_argument("--count", action="store_true")
    parser.add_argument("--time-torch", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.count:
        n = sum(p.numel() for p in Sd15Unet().parameters())
        print(json.dumps({"parameters": n, "sd15": SD15_PARAMETERS, "equal": n == SD15_PARAMETERS}))
        sys.exit(0 if n == SD15_PARAMETERS else 1)
    if args.time_torch:
        time_torch(args.time_torch, args.device, args.batch, args.threads)
        return
    if not args.folder:
        parser.error("give the folder to write, or --count / --time-torch")
    if args.fp16 and args.source:
        convert_folder(args.source, args.folder)
    else:
        build(args.folder, args.fp16, args.small)


if __name__ == "__main__":
    main()
