"""Exports shapes-flow's EMA weights as FLUX.1-schnell's ONNX folder, the way
tools/build_family_pipelines.py exports fixtures/models/tiny-flux-schnell: a diffusers FluxPipeline
saved with save_pretrained (under out/) and exported by optimum-onnx's main_export (task
text-to-image, fp32), then

- vae_encoder/ and vae_decoder/ replaced by the exact latent (model.py): the encoder is torch's
  pixel_unshuffle(2) — its latent_parameters are [mean, log-variance] with the mean the
  space-to-depth of the image and the log-variance −30 (σ ≈ 3·10⁻⁷) — and the decoder
  pixel_shuffle(2), exported by torch.onnx; their config.json is AutoencoderKL's with two blocks
  (diffusers' VAE factor 2^(2−1) = 2), latent_channels 12, scaling_factor 1, shift_factor 0 and
  sample_size 32. (optimum exports the pipeline's own AutoencoderKL, a placeholder here; no
  AutoencoderKL computes the exact map, so its graphs are replaced.)
- reference.json: what the PyTorch pipeline computes through its own methods (encode_prompt at
  max_sequence_length 16, _pack_latents, the transformer) for a held-out test scene
  (reference-scene.png, written here), a few prompts and three flow times with a fixed ε, in
  fixtures/models/tiny-flux's format; plus the largest relative ONNX-vs-PyTorch difference.
- tokenizer_vectors.json: prompt → ids of both tokenizers (padding="max_length", as FluxPipeline
  calls them).

Usage: out/venv-tools/bin/python tools/shapes_flow/export.py RUN_DIR/ema.pt TOKENIZERS_DIR OUT_DIR
         --scene-png PNG --scene-caption CAPTION
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from model import CLIP_LENGTH, LATENT, SIZE, T5_LENGTH, ShapesFlow, pack, to_latent, unpack  # noqa: E402
from build_family_pipelines import (  # noqa: E402
    decode, describe, f32, feed_for, ids, noise_for, rel_err, session,
)
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline  # noqa: E402
from transformers import CLIPTokenizer, T5TokenizerFast  # noqa: E402

FLOW_TS = [0.9, 0.5, 0.1]
VECTOR_PROMPTS = [
    "", "a", "a red circle", "a small blue square", "a large green triangle",
    "a red circle left of a blue square", "a blue square right of a red circle",
    "a yellow circle above a small red circle", "a red circle below a yellow square",
    "a small green square left of a large yellow triangle and a blue circle",
    "a large red triangle above a small blue circle and a green square",
    "circle red a of left",
]


def placeholder_vae():
    """optimum exports the pipeline's VAE; this one only carries the layout (replaced below)."""
    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT[0], sample_size=SIZE,
        block_out_channels=(8, 8), layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        scaling_factor=1.0, shift_factor=0.0, use_quant_conv=False, use_post_quant_conv=False,
    )


def build_pipeline(ema_path, tokenizers):
    state = torch.load(ema_path, map_location="cpu", weights_only=False)
    model = ShapesFlow(state["clip_vocab"], state["t5_vocab"])
    model.load_state_dict(state["ema"])
    model.eval()
    # FLUX.1-schnell's scheduler config (shift 1, no dynamic shifting)
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False, base_shift=0.5,
        max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096,
    )
    pipe = FluxPipeline(
        scheduler=scheduler, vae=placeholder_vae(), text_encoder=model.clip,
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(tokenizers, "tokenizer")),
        text_encoder_2=model.t5,
        tokenizer_2=T5TokenizerFast.from_pretrained(os.path.join(tokenizers, "tokenizer_2")),
        transformer=model.transformer,
    )
    return pipe, state["step"]


class SpaceToDepth(torch.nn.Module):
    def forward(self, sample):
        mean = torch.nn.functional.pixel_unshuffle(sample, 2)
        return torch.cat([mean, torch.full_like(mean, -30.0)], dim=1)


class DepthToSpace(torch.nn.Module):
    def forward(self, latent_sample):
        return torch.nn.functional.pixel_shuffle(latent_sample, 2)


def export_exact_vae(out):
    for part, module, name_in, name_out, shape in (
        ("vae_encoder", SpaceToDepth(), "sample", "latent_parameters", (1, 3, SIZE, SIZE)),
        ("vae_decoder", DepthToSpace(), "latent_sample", "sample", (1,) + LATENT),
    ):
        folder = os.path.join(out, part)
        path = os.path.join(folder, "model.onnx")
        os.remove(path)
        torch.onnx.export(module, (torch.zeros(shape),), path, input_names=[name_in], output_names=[name_out],
                          dynamic_axes={name_in: {0: "batch_size"}, name_out: {0: "batch_size"}},
                          opset_version=18, dynamo=False)
        config_path = os.path.join(folder, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        config["_shapes_flow_exact_latent"] = (
            "encoder: torch.nn.functional.pixel_unshuffle(image, 2) (channel 4c + 2a + b = pixel (2y + a, 2x + b) "
            "of colour c) as the mean, log-variance -30; decoder: pixel_shuffle(latent, 2). Untrained and exact; "
            "the AutoencoderKL fields give the layout (2 blocks: factor 2, 12 latent channels, scaling 1, shift 0)")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")


def image_tensor(path):
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb.transpose(2, 0, 1)[None].copy()) * 2.0 - 1.0


def reference(pipe, image, caption):
    words = caption.split()
    colour = next(w for w in words if w in ("red", "green", "blue", "yellow"))
    prompts = [caption, " ".join(w for w in words if w != colour), ""]
    latent = to_latent(image)
    img_ids = pipe._prepare_latent_image_ids(1, LATENT[1] // 2, LATENT[2] // 2, "cpu", torch.float32)
    encoders, conds, txt = [], {}, {}
    for prompt in prompts:
        emb, pooled, txt_ids = pipe.encode_prompt(prompt, prompt_2=None, device="cpu", max_sequence_length=T5_LENGTH)
        txt["ids"] = txt_ids
        encoders.append({"prompt": prompt, "input_ids": {
            "tokenizer": ids(pipe.tokenizer(prompt, padding="max_length", max_length=CLIP_LENGTH,
                                            truncation=True).input_ids),
            "tokenizer_2": ids(pipe.tokenizer_2(prompt, padding="max_length", max_length=T5_LENGTH,
                                                truncation=True).input_ids)},
            "prompt_embeds": f32(emb), "pooled_prompt_embeds": f32(pooled)})
        conds[prompt] = (emb, pooled)
    levels, predictions = [], []
    for k, t in enumerate(FLOW_TS):
        eps = noise_for(latent.shape, 100 + k)
        x_t = (1 - t) * latent + t * eps
        levels.append({"t": t, "noise": f32(eps), "x_t": f32(x_t), "timestep": f32(torch.tensor([t])),
                       "hidden_states": f32(pack(x_t))})
        for prompt in prompts:
            emb, pooled = conds[prompt]
            v = pipe.transformer(hidden_states=pack(x_t), timestep=torch.tensor([t]), guidance=None,
                                 pooled_projections=pooled, encoder_hidden_states=emb, txt_ids=txt["ids"],
                                 img_ids=img_ids).sample
            predictions.append({"level": k, "prompt": prompt, "model_output": f32(v),
                                "eps_hat": f32(x_t + (1 - t) * unpack(v))})
    return {
        "family": "flux-schnell",
        "conventions": {
            "latent": "exact: pixel_unshuffle(image, 2), scaling 1, shift 0 ([1, 12, 16, 16])",
            "x_t": "(1 − t)·latent + t·noise",
            "transformer": "as tiny-flux-schnell: hidden_states = _pack_latents(x_t), timestep = t, "
                           "encoder_hidden_states = T5 prompt_embeds, pooled_projections = CLIP pooler_output",
            "prediction": "velocity v ≈ noise − latent, packed; eps_hat = x_t + (1 − t)·_unpack_latents(v)",
            "max_sequence_length": T5_LENGTH,
        },
        "img_ids": f32(img_ids), "txt_ids": f32(txt["ids"]),
        "vae_mean": f32(latent), "latent": f32(latent), "encoders": encoders,
        "levels": levels, "predictions": predictions,
    }


def onnx_check(folder, ref, image):
    errs = {}
    params = session(folder, "vae_encoder").run(None, {"sample": image.numpy()})[0]
    errs["vae_encoder"] = rel_err(params[:, :LATENT[0]], decode(ref["latent"]))
    back = session(folder, "vae_decoder").run(None, {"latent_sample": decode(ref["latent"])})[0]
    errs["vae_decoder"] = rel_err(back, image.numpy())
    clip, t5, tr = (session(folder, p) for p in ("text_encoder", "text_encoder_2", "transformer"))
    by_prompt = {e["prompt"]: e for e in ref["encoders"]}
    for e in ref["encoders"]:
        pooled = clip.run(["pooler_output"], feed_for(clip, {"input_ids": np.array([e["input_ids"]["tokenizer"]])}))[0]
        states = t5.run(["last_hidden_state"],
                        feed_for(t5, {"input_ids": np.array([e["input_ids"]["tokenizer_2"]])}))[0]
        errs["pooled"] = max(errs.get("pooled", 0.0), rel_err(pooled, decode(e["pooled_prompt_embeds"])))
        errs["prompt_embeds"] = max(errs.get("prompt_embeds", 0.0), rel_err(states, decode(e["prompt_embeds"])))
    for p in ref["predictions"]:
        level, e = ref["levels"][p["level"]], by_prompt[p["prompt"]]
        out = tr.run(None, feed_for(tr, {
            "hidden_states": decode(level["hidden_states"]), "timestep": decode(level["timestep"]),
            "encoder_hidden_states": decode(e["prompt_embeds"]), "pooled_projections": decode(e["pooled_prompt_embeds"]),
            "img_ids": decode(ref["img_ids"]), "txt_ids": decode(ref["txt_ids"])}))[0]
        errs["transformer"] = max(errs.get("transformer", 0.0), rel_err(out, decode(p["model_output"])))
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ema")
    ap.add_argument("tokenizers")
    ap.add_argument("out")
    ap.add_argument("--scene-png", required=True)
    ap.add_argument("--scene-caption", required=True)
    ap.add_argument("--work", default=os.path.join(ROOT, "out", "shapes-flow", "pipeline"))
    args = ap.parse_args()
    pipe, step = build_pipeline(args.ema, args.tokenizers)
    if os.path.isdir(args.work):
        shutil.rmtree(args.work)
    pipe.save_pretrained(args.work, safe_serialization=True)
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        keep = {f: open(os.path.join(out, f)).read() for f in ("TRAINING.md", "train_log.txt")
                if os.path.isfile(os.path.join(out, f))}
        shutil.rmtree(out)
    else:
        keep = {}
    from optimum.exporters.onnx import main_export

    os.chdir(ROOT)  # relative paths: the exporter writes them into every config's _name_or_path
    main_export(model_name_or_path=os.path.relpath(args.work, ROOT), output=os.path.relpath(out, ROOT),
                task="text-to-image", device="cpu", library_name="diffusers", do_validation=True,
                local_files_only=True)
    export_exact_vae(out)
    for name, text in keep.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
    shutil.copyfile(args.scene_png, os.path.join(out, "reference-scene.png"))
    pipe = FluxPipeline.from_pretrained(args.work, local_files_only=True).to(torch.float32)
    image = image_tensor(args.scene_png)
    with torch.no_grad():
        ref = reference(pipe, image, args.scene_caption)
    ref["image"] = f"reference-scene.png: {args.scene_caption!r} (RGB / 255 · 2 − 1, [1, 3, 32, 32])"
    ref["ema_step"] = step
    import diffusers, onnxruntime, transformers  # noqa: E401

    ref["versions"] = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                       "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__}
    ref["graphs"] = describe(out)
    ref["onnx_check"] = onnx_check(out, ref, image)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
        f.write("\n")
    vectors = [{"prompt": p,
                "tokenizer": ids(pipe.tokenizer(p, padding="max_length", max_length=CLIP_LENGTH,
                                                truncation=True).input_ids),
                "tokenizer_2": ids(pipe.tokenizer_2(p, padding="max_length", max_length=T5_LENGTH,
                                                    truncation=True).input_ids)} for p in VECTOR_PROMPTS]
    with open(os.path.join(out, "tokenizer_vectors.json"), "w") as f:
        json.dump(vectors, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"shapes-flow (EMA at step {step}): {size} bytes; onnx vs torch (max rel): {ref['onnx_check']}")


if __name__ == "__main__":
    main()
