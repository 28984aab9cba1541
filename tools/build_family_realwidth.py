#!/usr/bin/env python3
"""FLUX.1-dev and SD 3 pipelines whose transformers have the released width (few blocks), for the
device step of issue 24: infodiff on WebGPU against diffusers on CUDA over the same inputs.

    out/venv-tools/bin/python tools/build_family_realwidth.py [flux sd3] [--flux-blocks 1,1]
        [--sd3-layers 2] [--out out/family-realwidth]

Each pipeline is built from diffusers' own classes and exported with optimum-onnx's exporter
(main_export, fp32), as tools/build_family_pipelines.py builds the tiny ones:

- FLUX.1-dev: FluxTransformer2DModel with FLUX.1-dev's config (width 3,072, 24 heads × 128, T5
  width 4,096, pooled 768, guidance embedding) but 1 double and 1 single block (546 M parameters);
- SD 3: SD3Transformer2DModel with SD 3 medium's config (width 1,536, 24 heads × 64, T5 width 4,096,
  caption projection 1,536, pooled 2,048, patch 2, positions up to 192) but 2 layers;
- the text encoders are stand-ins with the released encoders' output widths (CLIP-L 768, CLIP-G
  1,280, T5-XXL 4,096) and one layer each, on the tiny fixtures' tokenizers; the VAE is the tiny
  fixtures' (16 channels, 8× down). Their outputs mean nothing: the check compares the transformer.

The weights do not travel (2.2 GB for FLUX.1): every float initializer of every graph is moved into
the graph's external data file, and the graph keeps only where each one lies. A manifest beside each
graph (`model.onnx.weights.json`) says what fills each tensor on the machine that runs the check
(tools/family_weights.py): the transformer's tensors name the diffusers parameter (or buffer) they
were exported from, found here by value (and whether the exporter transposed or reshaped it), so that the
transformer built there from its config with the same seed writes them, and diffusers there runs
the very weights infodiff runs; the stand-ins' tensors are drawn from a seeded normal there (layer
norms around 1). Initializers no parameter holds (the exporter folded them from constants) stay in the
graph, below 1 MiB each, or the tool stops.

Written under out/ (ignored by git, never committed); `bash tools/gpu-check.sh prepare` carries
the result (graphs, manifests, configs, tokenizers: well under 1 MB) in its bundle.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from build_family_pipelines import clip_config, clip_tokenizer, t5_tokenizer, vae  # noqa: E402
from make_flux_realwidth import FLUX_DEV  # noqa: E402
from diffusers import (  # noqa: E402
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel  # noqa: E402

# SD 3 medium's transformer/config.json, but num_layers
SD3_MEDIUM = dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16, attention_head_dim=64,
                  num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                  pooled_projection_dim=2048, pos_embed_max_size=192)
SEED = 0  # the transformer's initialisation seed, here and where the check runs
KEEP_BYTES = 2**20  # an initializer nothing names (folded by the exporter) stays in the graph below this
PARTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_encoder", "vae_decoder")


def t5_standin():
    """T5-XXL's output width (4,096) with one narrow layer."""
    torch.manual_seed(2)
    return T5EncoderModel(T5Config(
        vocab_size=len(t5_tokenizer()), d_model=4096, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))


def build_flux(work, double, single):
    tok = clip_tokenizer(os.path.join(work, "tok"), "<|endoftext|>")
    torch.manual_seed(0)
    clip = CLIPTextModel(clip_config(len(tok), 768, 1, 768))
    torch.manual_seed(SEED)
    transformer = FluxTransformer2DModel(num_layers=double, num_single_layers=single, **FLUX_DEV)
    scheduler = FlowMatchEulerDiscreteScheduler(  # FLUX.1-dev's scheduler_config.json
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
        max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096,
    )
    return FluxPipeline(scheduler=scheduler, vae=vae(16, 0.3611, 0.1159, 3), text_encoder=clip,
                        tokenizer=tok, text_encoder_2=t5_standin(), tokenizer_2=t5_tokenizer(),
                        transformer=transformer)


def build_sd3(work, layers):
    tok1 = clip_tokenizer(os.path.join(work, "tok"), "<|endoftext|>")
    tok2 = clip_tokenizer(os.path.join(work, "tok2"), "!")
    torch.manual_seed(0)
    clip_l = CLIPTextModelWithProjection(clip_config(len(tok1), 768, 1, 768))
    torch.manual_seed(1)
    clip_g = CLIPTextModelWithProjection(clip_config(len(tok1), 1280, 1, 1280))
    torch.manual_seed(SEED)
    transformer = SD3Transformer2DModel(num_layers=layers, **SD3_MEDIUM)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=scheduler, vae=vae(16, 1.5305, 0.0609, 4),
        text_encoder=clip_l, tokenizer=tok1, text_encoder_2=clip_g, tokenizer_2=tok2,
        text_encoder_3=t5_standin(), tokenizer_3=t5_tokenizer(),
    )


def digest(array):
    """The values in C order: the exporter may have folded a reshape of a buffer into the graph's
    tensor (SD 3's positional table [1, 36864, 1536] is stored [1, 192, 192, 1536])."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def value_index(module):
    """Every parameter and buffer of a module by the digest of its values (and of its transpose)."""
    index = {}
    for key, tensor in module.state_dict().items():
        if not tensor.is_floating_point():
            continue
        a = tensor.detach().float().numpy()
        index.setdefault(digest(a), (key, False))
        if a.ndim == 2:
            index.setdefault(digest(a.T), (key, True))
    return index


def strip_weights(path, module, torch_sourced):
    """Moves every float initializer of the graph at `path` into external data, writes the graph
    without the data and the manifest of where each tensor lies and what fills it."""
    model = onnx.load(path, load_external_data=True)
    index = value_index(module)
    tensors, offset, folded = [], 0, []
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        array = numpy_helper.to_array(init)
        found = index.get(digest(array))
        if found is None:
            if array.nbytes >= KEEP_BYTES:
                folded.append(f"{init.name} {list(array.shape)}")
            continue
        key, transposed = found
        length = array.nbytes
        entry = dict(name=init.name, dims=list(array.shape), offset=offset, length=length, key=key,
                     transposed=transposed, source="torch" if torch_sourced else "random")
        tensors.append(entry)
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for k, v in (("location", "model.onnx_data"), ("offset", str(offset)), ("length", str(length))):
            init.external_data.add(key=k, value=v)
        offset += (length + 63) // 64 * 64  # 64-byte aligned, as onnx's own writer aligns
    if folded:
        raise SystemExit(f"{path}: initializers of 1 MiB or more that no parameter or buffer holds "
                         f"(folded by the exporter; they would have to travel): {folded[:8]}")
    folder = os.path.dirname(path)
    for stale in os.listdir(folder):
        if stale.startswith("model.onnx"):
            os.remove(os.path.join(folder, stale))
    onnx.save_model(model, path)
    manifest = dict(data="model.onnx_data", bytes=offset, seed=SEED if torch_sourced else None,
                    tensors=tensors)
    with open(path + ".weights.json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return len(tensors), offset


def export(pipe, work, out):
    torch_dir = os.path.join(work, "pipeline")
    shutil.rmtree(torch_dir, ignore_errors=True)
    pipe.save_pretrained(torch_dir, safe_serialization=True)
    shutil.rmtree(out, ignore_errors=True)
    from optimum.exporters.onnx import main_export

    os.chdir(ROOT)
    main_export(model_name_or_path=os.path.relpath(torch_dir, ROOT), output=out, task="text-to-image",
                device="cpu", library_name="diffusers", do_validation=True, local_files_only=True)


def modules_of(pipe):
    return {"text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2,
            "text_encoder_3": getattr(pipe, "text_encoder_3", None), "transformer": pipe.transformer,
            "vae_encoder": pipe.vae, "vae_decoder": pipe.vae}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("families", nargs="*", default=["flux", "sd3"])
    ap.add_argument("--flux-blocks", default="1,1", help="double,single blocks")
    ap.add_argument("--sd3-layers", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "family-realwidth"))
    args = ap.parse_args()
    for family in args.families:
        work = os.path.join(args.out, "work", family)
        os.makedirs(work, exist_ok=True)
        if family == "flux":
            double, single = map(int, args.flux_blocks.split(","))
            pipe = build_flux(work, double, single)
        elif family == "sd3":
            pipe = build_sd3(work, args.sd3_layers)
        else:
            raise SystemExit(f"unknown family {family!r}; expected flux or sd3")
        pipe = pipe.to(torch.float32)
        out = os.path.join(args.out, family)
        export(pipe, work, out)
        modules = modules_of(pipe)
        for part in PARTS:
            path = os.path.join(out, part, "model.onnx")
            if not os.path.exists(path):
                continue
            count, size = strip_weights(path, modules[part], part == "transformer")
            print(f"{family}/{part}: {count} tensors, {size / 2**20:.1f} MiB filled where the check runs")
        shutil.rmtree(work)
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
        print(f"{family}: {total / 2**10:.0f} KiB travel")


if __name__ == "__main__":
    main()
