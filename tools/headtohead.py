#!/usr/bin/env python3
"""The reference's side of the head-to-head (issue 26, part 6): kxh001/Info-Decomp's per-word
information estimator, run from its own code on diffusers + PyTorch, on the same networks, weights,
latents, prompts and thread count as infodiff. bench/headtohead.ts drives it and infodiff's side.

Environment (once): the fixture tools' venv and, beside it, the reference's own imports:

    bash tools/python-env.sh                       # out/venv-tools: torch 2.9.1, diffusers 0.36.0
    bash tools/reference-env.sh                    # out/venv-ref (+ pytorch-lightning, …) and
                                                   # out/info-decomp (the reference's tree)

Models (never committed; out/ is ignored):

    out/venv-ref/bin/python tools/headtohead.py build-sd15 out/headtohead/sd15
    out/venv-ref/bin/python tools/headtohead.py build-tiny out/headtohead/tiny-sd

 - build-sd15: Stable Diffusion 1.5's UNet architecture with random weights, the very network of
   tools/build_sd15_benchmark.py (its `unet()`, seed 0, 859,520,964 parameters), exported to ONNX
   with dynamic height and width (the benchmark export fixes 64×64 latents), in the SD layout with
   the same stand-ins for the text encoder (seed 1) and VAE (seeds 2, 3). Checks the ONNX UNet
   against PyTorch on one input.
 - build-tiny: a tiny StableDiffusionPipeline from diffusers' own classes with seeded random weights
   (UNet (32, 64) wide, 2 layers per block, cross-attention 32, as diffusers' tiny test pipelines;
   CLIP 32 wide, 5 layers; an 8×-downsampling VAE and the tiny CLIP vocabulary of
   tools/build_family_pipelines.py; SD 1.5's PNDM scheduler), saved with save_pretrained under
   FOLDER/pipeline and exported by optimum-onnx's exporter to FOLDER/onnx, as that tool does.

The reference's estimator (bench/headtohead.ts calls this; JSON on stdout):

    out/venv-ref/bin/python tools/headtohead.py reference MODEL_FOLDER --inputs INPUTS.json \\
        [--seed 42] [--threads 2] [--calls N] [--dump FILE.npz]

What a researcher runs for per-word information with the reference is scripts/eval_itd.py with
`eval_metrics cmi` (its defaults: `num_steps` 100 log-SNR draws, `n_samples_per_point` 1 ε each,
`batch_size` 10 rows, `int_mode` logistic, loc 1, scale 2): one row per word (the image, the caption,
the caption without the word), its conditions [caption, context, ""] evaluated on the same noisy
latent by one UNet call per draw, and the word's information is `mi_appx[0]`, the orthogonal
estimator ½·mean_i w_i·‖ε̂(z_i | caption) − ε̂(z_i | context)‖². This runs exactly that:
`DiffusionModel.image_level_nll` (res_type nll_1D: the same calls as nll_2D, whose per-pixel maps sum
to it) imported from the reference's tree, under `torch.manual_seed(seed)` as eval_itd.py seeds, the
10 rows in one batch. Two thin recorders keep what the reference computes but does not return, its
α draws with their weights (`logistic_integrate`) and its per-draw squared differences
(`image_level_mmse`), so the standard error is computed as infodiff computes one from i.i.d. draws:
the sample standard deviation (n − 1) of the 100 per-draw terms over √100. The recorded terms'
mean is checked to equal the reference's own result.

INPUTS.json (written by bench/headtohead.ts): {"prompt", "contexts": [one per word, infodiff's
removal], "latent": path of float32 [4, h, w], "shape": [4, h, w]}: the same latent (the VAE's
posterior mean × scaling factor, as infodiff prepares an image) and the same prompts on both sides.
The reference's own `encode_latents` samples the posterior at a fixed 512×512; a smaller size needs
the latent given, and the posterior mean removes a difference that is not the estimator's.

`--calls N` times only N of the reference's UNet calls (a timing repeat; no estimate).
`--dump FILE.npz` also saves the per-draw α, weights and terms (to check the SE by simulation).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
REFERENCE_DIR = os.environ.get("INFODIFF_REFERENCE_DIR", os.path.join(ROOT, "out", "info-decomp"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# SD 1.5's UNet as diffusers configures it (runwayml/stable-diffusion-v1-5 unet/config.json)
SD15_CONFIG = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5,
    flip_sin_to_cos=True, freq_shift=0, act_fn="silu", downsample_padding=1,
    mid_block_scale_factor=1,
)
PNDM_SD15 = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 num_train_timesteps=1000, prediction_type="epsilon", steps_offset=1,
                 set_alpha_to_one=False, skip_prk_steps=True)


# ---------------------------------------------------------------- SD 1.5 (random weights)

def diffusers_name(name):
    """A parameter of build_sd15_benchmark.Sd15Unet → its name in diffusers' UNet2DConditionModel."""
    for mine, theirs in [("mid_resnet_1.", "mid_block.resnets.0."),
                         ("mid_attention.", "mid_block.attentions.0."),
                         ("mid_resnet_2.", "mid_block.resnets.1."),
                         (".downsample.", ".downsamplers.0.conv."), (".upsample.", ".upsamplers.0.conv."),
                         (".ff.0.proj.", ".ff.net.0.proj."), (".ff.2.", ".ff.net.2.")]:
        name = name.replace(mine, theirs)
    return name


def sd15_diffusers_unet():
    """The benchmark's weights (build_sd15_benchmark.unet(), seed 0) in diffusers' own class,
    checked against the benchmark's module on one input."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    import build_sd15_benchmark as bench

    mine = bench.unet()
    with init_empty_weights():
        theirs = UNet2DConditionModel(**SD15_CONFIG)
    theirs.load_state_dict({diffusers_name(k): v for k, v in mine.state_dict().items()},
                           strict=True, assign=True)
    theirs.eval()
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    c = torch.randn(1, 77, 768, generator=generator)
    t = torch.tensor([500])
    with torch.no_grad():
        a, b = mine(x, t, c), theirs(x, t, encoder_hidden_states=c).sample
    difference = float((a - b).abs().max() / b.abs().max())
    if not difference < 1e-4:
        raise SystemExit(f"diffusers' UNet differs from the benchmark's by {difference:.2e} (relative)")
    del mine
    return theirs, difference


def sd15_text_encoder():
    """The benchmark's text-encoder stand-in (seed 1, as build_sd15_benchmark builds it)."""
    import build_sd15_benchmark as bench

    torch.manual_seed(1)
    return bench.TextEncoder().eval()


def build_sd15(folder):
    import onnxruntime as ort
    import build_sd15_benchmark as bench

    for part in ["unet", "text_encoder", "vae_encoder", "vae_decoder", "scheduler", "tokenizer"]:
        os.makedirs(os.path.join(folder, part), exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    batch = {0: "batch"}
    model = bench.unet()
    generator = torch.Generator().manual_seed(5)
    example = (torch.randn(1, 4, 8, 8, generator=generator), torch.tensor([500]),
               torch.randn(1, 77, 768, generator=generator))
    with torch.no_grad():
        expected = model(*example).numpy()
    started = time.time()
    path = os.path.join(folder, "unet", "model.onnx")
    bench.export(model, example, path, ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                 {"sample": dynamic, "timestep": batch, "encoder_hidden_states": batch, "out_sample": dynamic})
    print(f"unet exported in {time.time() - started:.0f} s", file=sys.stderr)
    del model
    bench.export(sd15_text_encoder(), (torch.zeros(1, 77, dtype=torch.int64),),
                 os.path.join(folder, "text_encoder", "model.onnx"), ["input_ids"], ["last_hidden_state"],
                 {"input_ids": batch, "last_hidden_state": batch})
    torch.manual_seed(2)
    bench.export(bench.VaeEncoder().eval(), (torch.randn(1, 3, 64, 64),),
                 os.path.join(folder, "vae_encoder", "model.onnx"), ["sample"], ["latent_parameters"],
                 {"sample": dynamic, "latent_parameters": dynamic})
    torch.manual_seed(3)
    bench.export(bench.VaeDecoder().eval(), (torch.randn(1, 4, 8, 8),),
                 os.path.join(folder, "vae_decoder", "model.onnx"), ["latent_sample"], ["sample"],
                 {"latent_sample": dynamic, "sample": dynamic})
    import shutil
    for name in ["vocab.json", "merges.txt"]:
        shutil.copy(os.path.join(ROOT, "fixtures", "clip", name), os.path.join(folder, "tokenizer", name))
    bench.write(folder, "tokenizer/special_tokens_map.json", {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"})
    bench.write(folder, "tokenizer/tokenizer_config.json", {"model_max_length": 77})
    bench.write(folder, "scheduler/scheduler_config.json", {"_class_name": "PNDMScheduler", **PNDM_SD15})
    # no sample_size: the export takes any multiple of 8 (loadModel's `resolution` says which)
    bench.write(folder, "vae_decoder/config.json", {"scaling_factor": 0.18215})
    bench.write(folder, "model_index.json", {
        "_class_name": "OnnxStableDiffusionPipeline",
        "_note": "random-weight Stable Diffusion 1.5 UNet (tools/build_sd15_benchmark.py's), dynamic "
                 "height and width, for the head-to-head (tools/headtohead.py)",
        "unet": ["diffusers", "OnnxRuntimeModel"], "text_encoder": ["diffusers", "OnnxRuntimeModel"],
        "vae_encoder": ["diffusers", "OnnxRuntimeModel"], "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"]})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"sample": example[0].numpy(), "timestep": example[1].numpy(),
                             "encoder_hidden_states": example[2].numpy()})[0]
    difference = float(np.abs(got - expected).max() / np.abs(expected).max())
    print(json.dumps({"folder": folder, "onnxVsTorch": difference}))
    if not difference < 1e-4:
        raise SystemExit(f"the ONNX UNet differs from PyTorch by {difference:.2e} (relative)")


# ---------------------------------------------------------------- tiny SD pipeline

TINY_LATENT = 32


def build_tiny(folder):
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel
    import build_family_pipelines as family

    torch_dir = os.path.join(folder, "pipeline")
    tokenizer = family.clip_tokenizer(os.path.join(folder, "tok"), "<|endoftext|>")
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(family.clip_config(len(tokenizer), 32, 5, 32))
    torch.manual_seed(1)
    unet = UNet2DConditionModel(
        sample_size=TINY_LATENT, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=32,
    )
    vae = family.vae(4, 0.18215, None, 2)
    vae.register_to_config(sample_size=8 * TINY_LATENT)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler(**PNDM_SD15), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(torch_dir, safe_serialization=True)
    from optimum.exporters.onnx import main_export

    main_export(model_name_or_path=torch_dir, output=os.path.join(folder, "onnx"), task="text-to-image",
                device="cpu", library_name="diffusers", do_validation=True, local_files_only=True)
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, TINY_LATENT, TINY_LATENT, generator=generator)
    c = torch.randn(3, 77, 32, generator=generator)
    with torch.no_grad():
        expected = unet(x, torch.tensor(500.0), encoder_hidden_states=c).sample.numpy()
    session = ort.InferenceSession(os.path.join(folder, "onnx", "unet", "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {"sample": x.numpy(), "timestep": np.array(500.0, dtype=np.float32),
                             "encoder_hidden_states": c.numpy()})[0]
    difference = float(np.abs(got - expected).max() / np.abs(expected).max())
    print(json.dumps({"folder": folder, "onnxVsTorch": difference}))
    if not difference < 1e-4:
        raise SystemExit(f"the ONNX UNet differs from PyTorch by {difference:.2e} (relative)")


# ---------------------------------------------------------------- the reference's estimator

def import_reference():
    """The reference's modules from its own tree (eval_itd.py runs from the repository root)."""
    if not os.path.isdir(os.path.join(REFERENCE_DIR, "utils")):
        raise SystemExit(f"no reference tree at {REFERENCE_DIR}: run tools/reference-env.sh")
    sys.path.insert(0, REFERENCE_DIR)
    import utils.itdiffusion as itdiffusion
    from utils.stablediffusion import StableDiffuser

    return itdiffusion, StableDiffuser


def load_reference_model(folder, StableDiffuser):
    """(unet, logsnr2t, encode_prompts, note) for the folder: the tiny pipeline through the
    reference's own StableDiffuser; the SD 1.5 benchmark (no diffusers pipeline: its text encoder
    is a stand-in) through diffusers' UNet2DConditionModel, the reference's logsnr2t on the
    folder's scheduler, and the stand-in encoder on CLIP's tokenizer."""
    pipeline = os.path.join(folder, "pipeline")
    if os.path.isdir(pipeline):
        sdm = StableDiffuser(pipeline)

        def encode_prompts(prompts):
            # StableDiffuser.encode_prompts calls the pipeline's _encode_prompt, which on diffusers
            # 0.36 concatenates the absent negative embedding (None) without guidance and fails;
            # encode_prompt(...)[0] is what _encode_prompt returned in diffusers 0.20 (setup.py's)
            with torch.no_grad():
                return sdm.sdm_pipe.encode_prompt(prompts, sdm.device, 1, False)[0]

        return sdm.unet, sdm.logsnr2t, encode_prompts, {
            "loaded": "StableDiffuser(pipeline); prompts through encode_prompt (see encode_prompts)"}
    from diffusers import PNDMScheduler
    from transformers import CLIPTokenizer

    unet, difference = sd15_diffusers_unet()
    sdm = StableDiffuser.__new__(StableDiffuser)  # no pipeline to load; its logsnr2t needs only this
    sdm.scheduler = PNDMScheduler.from_pretrained(os.path.join(folder, "scheduler"))
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
    encoder = sd15_text_encoder()

    def encode_prompts(prompts):
        ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids
        with torch.no_grad():
            return encoder(ids)

    return unet, sdm.logsnr2t, encode_prompts, {
        "loaded": "UNet2DConditionModel(SD 1.5 config) with build_sd15_benchmark's weights",
        "diffusersVsBenchmark": difference}


class EnoughCalls(Exception):
    """Stops a timing run (`--calls`) after its calls."""


def run_reference(args):
    torch.set_num_threads(args.threads)
    itdiffusion, StableDiffuser = import_reference()
    with open(args.inputs) as f:
        inputs = json.load(f)
    shape = tuple(inputs["shape"])
    latent = torch.from_numpy(np.fromfile(inputs["latent"], dtype=np.float32).reshape((1,) + shape))
    started = time.time()
    unet, logsnr2t, encode_prompts, note = load_reference_model(args.folder, StableDiffuser)
    load_seconds = time.time() - started
    itd = itdiffusion.DiffusionModel(unet, shape, logsnr_loc=1.0, logsnr_scale=2.0, clip=3.0,
                                     logsnr2t=logsnr2t)  # eval_itd.py's construction and defaults
    # recorders: what image_level_nll computes but does not return
    record = {}
    logistic = itdiffusion.logistic_integrate

    def recording_logistic(*a, **k):
        record["logsnrs"], record["weights"] = logistic(*a, **k)
        return record["logsnrs"], record["weights"]

    itdiffusion.logistic_integrate = recording_logistic
    mmse = itd.image_level_mmse

    def recording_mmse(*a, **k):
        record["mmses"], record["diff"] = mmse(*a, **k)
        return record["mmses"], record["diff"]

    itd.image_level_mmse = recording_mmse
    contexts = inputs["contexts"]
    rows = len(contexts)
    torch.manual_seed(args.seed)
    calls = {"n": 0}
    forward = unet.forward

    def counting(*a, **k):
        calls["n"] += 1
        if args.calls and calls["n"] > args.calls:
            raise EnoughCalls
        return forward(*a, **k)

    unet.forward = counting
    with torch.no_grad():
        started, cpu = time.time(), time.process_time()
        # eval_itd.py's cmi branch, the 10 rows in one batch (its batch_size 10)
        images = latent.repeat(rows, 1, 1, 1)
        conds = torch.stack([encode_prompts([inputs["prompt"]] * rows), encode_prompts(contexts),
                             encode_prompts([""] * rows)])
        try:
            nll, mi_appx = itd.image_level_nll(images, conds, snr_num=args.snr_num,
                                               z_sample_num=1, int_mode="logistic")
        except EnoughCalls:
            seconds, cpu = time.time() - started, time.process_time() - cpu
            print(json.dumps({"calls": args.calls, "seconds": seconds, "secondsPerCall": seconds / args.calls,
                              "cpuSeconds": cpu,
                              "itemsPerCall": 3 * rows, "threads": torch.get_num_threads()}))
            return
        seconds, cpu = time.time() - started, time.process_time() - cpu
    weights = record["weights"].double()
    # per draw i and row b: ½ w_i ‖ε̂(caption) − ε̂(context)‖² (orthogonal) and
    # ½ w_i (‖ε − ε̂(context)‖² − ‖ε − ε̂(caption)‖²) (standard), as image_level_nll averages them
    orthogonal = 0.5 * weights[:, None] * record["diff"][:, 0, :].double()
    standard = 0.5 * weights[:, None] * (record["mmses"][:, 1, :] - record["mmses"][:, 0, :]).double()
    if not torch.allclose(orthogonal.mean(0).float(), mi_appx[0], rtol=1e-5, atol=1e-6):
        raise SystemExit("the recorded draws do not reproduce the reference's mi_appx")
    n = orthogonal.shape[0]
    if args.dump:
        np.savez(args.dump, logsnrs=record["logsnrs"].numpy(), weights=weights.numpy(),
                 orthogonal=orthogonal.numpy(), standard=standard.numpy())

    def summary(terms):
        return [{"nats": float(terms[:, b].mean()), "se": float(terms[:, b].std(unbiased=True) / n ** 0.5)}
                for b in range(rows)]

    print(json.dumps({
        "seed": args.seed, "threads": torch.get_num_threads(), "draws": n, "rows": rows,
        "unetCalls": calls["n"], "itemsPerCall": 3 * rows, "seconds": seconds, "cpuSeconds": cpu,
        "loadSeconds": load_seconds,
        "logSnrRange": [float(record["logsnrs"].min()), float(record["logsnrs"].max())],
        "orthogonal": summary(orthogonal), "standard": summary(standard), **note,
        "versions": {"torch": torch.__version__, "diffusers": __import__("diffusers").__version__},
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build-sd15").add_argument("folder")
    sub.add_parser("build-tiny").add_argument("folder")
    ref = sub.add_parser("reference")
    ref.add_argument("folder")
    ref.add_argument("--inputs", required=True)
    ref.add_argument("--seed", type=int, default=42)  # eval_itd.py's default seed
    ref.add_argument("--threads", type=int, default=2)
    ref.add_argument("--snr-num", type=int, default=100)  # eval_itd.py's num_steps
    ref.add_argument("--calls", type=int, default=0)
    ref.add_argument("--dump", help="also save the per-draw terms (.npz)")
    args = parser.parse_args()
    if args.command == "build-sd15":
        build_sd15(args.folder)
    elif args.command == "build-tiny":
        build_tiny(args.folder)
    else:
        run_reference(args)


if __name__ == "__main__":
    main()
