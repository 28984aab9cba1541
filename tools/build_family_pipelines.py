#!/usr/bin/env python3
"""Builds fixtures/models/tiny-{sdxl,sd3,flux,flux-schnell}: real diffusers pipelines, tiny and random.

Run from the repository root in the tools environment (tools/python-env.sh):

    out/venv-tools/bin/python tools/build_family_pipelines.py [sdxl sd3 flux flux-schnell]

Each family's pipeline is built from diffusers' own classes with seeded random weights, the way
diffusers' tests build tiny pipelines (get_dummy_components of test_stable_diffusion_xl.py,
test_pipeline_stable_diffusion_3.py, test_pipeline_flux.py), but with the real families' layout where
it is cheap: SD3 and FLUX have 16 latent channels, SD3 patches 2x2, FLUX packs 2x2 into 64-wide
tokens, the VAEs downsample 8x, and the VAE scaling/shift factors and scheduler configs are the
released models'. Tokenizers are local: CLIP tokenizers are a CLIP-format subset of fixtures/clip
(every byte token plus the merges the fixture words need, in CLIP's rank order, so those words
split into CLIP's own pieces; the full 49,408-token vocabulary would make each text encoder's
embedding table alone larger than the whole fixture), tokenizer_2 of SDXL and SD3 pads with `!`
as the released ones do, and T5 is fixtures/tokenizers/t5-tiny. The pipeline is saved with
save_pretrained (under out/, not committed) and exported with optimum-onnx's exporter
(main_export, task text-to-image, fp32), whose folder is committed as it is written.

reference.json (in each folder) is what diffusers' PyTorch pipeline computes, through its own
methods, for fixtures/images/test-64.png, a few prompts (a full one, the same with one word
removed, "", and one longer than CLIP's 77 tokens) and a few noise levels with a fixed ε. Arrays are
stored exactly as float32: {"dtype": "float32", "shape": [...], "base64": little-endian bytes}.
 - encoders: what encode_prompt returns (SDXL: prompt_embeds = both CLIPs' penultimate hidden
   states concatenated, pooled = CLIP-G's text_embeds, and the unconditional the model's
   force_zeros_for_empty_prompt asks for; SD3: the CLIP states zero-padded to T5's width and
   stacked with T5's, pooled = both text_embeds; FLUX: CLIP pooler_output and T5 states, txt_ids),
   plus the input ids each tokenizer gave;
 - latent: VAE encoder mean, (mean − shift_factor) · scaling_factor (the pipelines' img2img latent);
 - predictions: for each (prompt, t): the network's exact inputs (x_t, timestep, ids, guidance) and
   its raw output, and ε̂ in the variance-preserving parameterisation (SDXL: the ε it predicts;
   flows: ε̂ = x_t + (1 − t)·v̂ with x_t = (1 − t)·x + t·ε).
The tool also runs every exported graph with onnxruntime on the same inputs and stores the largest
relative difference to PyTorch (`onnx_check`), so a fixture that disagrees with its own pipeline is
never committed silently.

ONNX graphs written by optimum-onnx 0.1.0, opset 18, all float32 except int64 ids (B batch, S
sequence, H×W latent; numbers are these fixtures' widths; fixtures/models/FAMILIES.md says more):
  SDXL  text_encoder    input_ids[B,S] -> last_hidden_state[B,S,16], pooler_output[B,16],
                        hidden_states.0..3[B,S,16]            (penultimate: hidden_states.2)
        text_encoder_2  input_ids[B,S] -> text_embeds[B,20], last_hidden_state[B,S,24],
                        hidden_states.0..4[B,S,24]            (penultimate: hidden_states.3)
        unet            sample[B,4,H,W], timestep[] (scalar), encoder_hidden_states[B,S,40],
                        text_embeds[B,20], time_ids[B,6] -> out_sample[B,4,H,W]
  SD3   text_encoder    input_ids[B,S] -> text_embeds[B,16], last_hidden_state, hidden_states.0..3[B,S,16]
        text_encoder_2  input_ids[B,S] -> text_embeds[B,24], last_hidden_state, hidden_states.0..4[B,S,24]
        text_encoder_3  input_ids[B,S] -> last_hidden_state[B,S,48]
        transformer     hidden_states[B,16,H,W], encoder_hidden_states[B,S,48], pooled_projections[B,40],
                        timestep[B] (1000·t) -> out_hidden_states[B,16,H,W]
  FLUX  text_encoder    input_ids[B,S] -> last_hidden_state[B,S,16], pooler_output[B,16]
        text_encoder_2  input_ids[B,S] -> last_hidden_state[B,S,32]
        transformer     hidden_states[B,HW/4,64], encoder_hidden_states[B,S,32], pooled_projections[B,16],
                        timestep[B] (t), img_ids int64[HW/4,3], txt_ids int64[S,3], guidance[B] (dev only)
                        -> out_hidden_states[B,HW/4,64]
  all   vae_encoder     sample[B,3,8H,8W] -> latent_parameters[B,2C,H,W] (mean, then log-variance)
        vae_decoder     latent_sample[B,C,H,W] -> sample[B,3,8H,8W]
optimum labels CLIP's text_embeds [batch_size, sequence_length]; the tensor is [B, projection].
"""

import base64
import collections
import json
import os
import shutil
import sys

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from clip_bpe import BYTE_ENCODER, encode_bytes  # noqa: E402
import clip_bpe  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (  # noqa: E402
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
)

CLIP_DIR = os.path.join(ROOT, "fixtures", "clip")
T5_DIR = os.path.join(ROOT, "fixtures", "tokenizers", "t5-tiny")
IMAGE = os.path.join(ROOT, "fixtures", "images", "test-64.png")
MODELS = os.path.join(ROOT, "fixtures", "models")
WORK = os.path.join(ROOT, "out", "family-pipelines")

PROMPT = "a small red circle to the left of a big blue square on the green grass"
PROMPTS = [
    PROMPT,
    "a small circle to the left of a big blue square on the green grass",  # "red" removed
    "",
    # 90 words: past CLIP's 77 tokens, within T5's 256
    " ".join(["a red circle and a blue square on the grass"] * 9) + " with a photo of a dog",
]
SDXL_TIMESTEPS = [999.0, 500.0, 100.0]
FLOW_TS = [0.9, 0.5, 0.1]
FLUX_GUIDANCE = 1.0
# Words the tiny CLIP vocabulary splits exactly as CLIP does (more split into smaller pieces).
WORDS = sorted(set(" ".join(PROMPTS).split()) | set(
    "a an the of on in with and to left right above below next photo painting picture small big large "
    "tiny red green blue yellow purple orange black white gray pink circle square triangle star cat dog "
    "man woman person car bus tree house sky grass table kitchen street water horse bird".split()))


# ---------------------------------------------------------------- tokenizers

def tiny_clip_vocab():
    """CLIP-format vocabulary: every byte token (plain and `</w>`), the merges WORDS need, specials."""
    with open(os.path.join(CLIP_DIR, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    all_merges = [tuple(line.split()) for line in lines if line.strip()]
    ranks = {m: i for i, m in enumerate(all_merges)}
    used = set()
    for word in WORDS:
        clip_bpe.bpe(encode_bytes(word), ranks, used)
    merges = [m for m in all_merges if m in used]
    byte_tokens = list(BYTE_ENCODER.values())
    tokens = byte_tokens + [t + "</w>" for t in byte_tokens] + [a + b for a, b in merges]
    # EOS must be the largest id: CLIP's pooling (eos_token_id 2, the legacy path) takes argmax(ids).
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    tiny_ranks = {m: i for i, m in enumerate(merges)}
    for word in WORDS:
        assert clip_bpe.bpe(encode_bytes(word), tiny_ranks) == clip_bpe.bpe(encode_bytes(word), ranks), word
    return vocab, merges


def clip_tokenizer(folder, pad_token):
    """Writes a CLIP tokenizer folder (the released files' layout) and loads it as the pipelines do."""
    vocab, merges = tiny_clip_vocab()
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tok = CLIPTokenizer(
        os.path.join(folder, "vocab.json"),
        os.path.join(folder, "merges.txt"),
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token=pad_token,
        model_max_length=77,
    )
    return tok


def t5_tokenizer():
    return T5TokenizerFast.from_pretrained(T5_DIR)


# ---------------------------------------------------------------- components

def clip_config(vocab_size, hidden, layers, projection):
    # bos/eos/pad 0/2/1 as the released CLIP configs: eos_token_id 2 selects the argmax pooling.
    return CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, vocab_size=vocab_size, hidden_size=hidden,
        intermediate_size=2 * hidden, num_attention_heads=2, num_hidden_layers=layers,
        max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=projection,
    )


def t5_encoder(d_model, seed):
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(t5_tokenizer()), d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2,
        num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return T5EncoderModel(config)


def vae(latent_channels, scaling, shift, seed):
    """8x downsampling as the released VAEs (four blocks), with few channels."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, sample_size=64,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=scaling, shift_factor=shift,
        use_quant_conv=shift is None, use_post_quant_conv=shift is None,
    )


def build_sdxl(folder):
    tok1 = clip_tokenizer(os.path.join(folder, "tok"), "<|endoftext|>")
    tok2 = clip_tokenizer(os.path.join(folder, "tok2"), "!")
    n = len(tok1)
    torch.manual_seed(0)
    te1 = CLIPTextModel(clip_config(n, 16, 3, 16))  # CLIP-L: 768 wide, 12 layers
    torch.manual_seed(1)
    te2 = CLIPTextModelWithProjection(clip_config(n, 24, 4, 20))  # CLIP-G: 1280, 32 layers, proj 1280
    torch.manual_seed(2)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=6 * 8 + 20,
        cross_attention_dim=16 + 24, norm_num_groups=4,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
        timestep_spacing="leading", prediction_type="epsilon", num_train_timesteps=1000,
        interpolation_type="linear", use_karras_sigmas=False,
    )
    return StableDiffusionXLPipeline(
        vae=vae(4, 0.13025, None, 3), text_encoder=te1, text_encoder_2=te2, tokenizer=tok1,
        tokenizer_2=tok2, unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True,
    )


def build_sd3(folder):
    tok1 = clip_tokenizer(os.path.join(folder, "tok"), "<|endoftext|>")
    tok2 = clip_tokenizer(os.path.join(folder, "tok2"), "!")
    n = len(tok1)
    torch.manual_seed(0)
    te1 = CLIPTextModelWithProjection(clip_config(n, 16, 3, 16))  # CLIP-L with projection (768)
    torch.manual_seed(1)
    te2 = CLIPTextModelWithProjection(clip_config(n, 24, 4, 24))  # CLIP-G (1280)
    te3 = t5_encoder(48, 2)  # T5-XXL: 4096
    torch.manual_seed(3)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=48,
        caption_projection_dim=32, pooled_projection_dim=16 + 24, pos_embed_max_size=16,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=scheduler, vae=vae(16, 1.5305, 0.0609, 4),
        text_encoder=te1, tokenizer=tok1, text_encoder_2=te2, tokenizer_2=tok2,
        text_encoder_3=te3, tokenizer_3=t5_tokenizer(),
    )


def build_flux(folder, dev):
    tok1 = clip_tokenizer(os.path.join(folder, "tok"), "<|endoftext|>")
    torch.manual_seed(0)
    te1 = CLIPTextModel(clip_config(len(tok1), 16, 3, 16))  # CLIP-L: pooler_output 768
    te2 = t5_encoder(32, 1)  # T5-XXL: 4096
    torch.manual_seed(2)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
        guidance_embeds=dev, axes_dims_rope=(4, 6, 6),
    )
    if dev:  # FLUX.1-dev's scheduler_config.json
        scheduler = FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
            max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096,
        )
    else:  # FLUX.1-schnell's
        scheduler = FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False, base_shift=0.5,
            max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096,
        )
    return FluxPipeline(
        scheduler=scheduler, vae=vae(16, 0.3611, 0.1159, 3), text_encoder=te1, tokenizer=tok1,
        text_encoder_2=te2, tokenizer_2=t5_tokenizer(), transformer=transformer,
    )


FAMILIES = {
    "sdxl": lambda folder: build_sdxl(folder),
    "sd3": lambda folder: build_sd3(folder),
    "flux": lambda folder: build_flux(folder, True),
    "flux-schnell": lambda folder: build_flux(folder, False),
}


# ---------------------------------------------------------------- export

def save_and_export(name, pipe):
    work = os.path.join(WORK, name)
    torch_dir = os.path.join(work, "pipeline")
    if os.path.isdir(torch_dir):
        shutil.rmtree(torch_dir)
    pipe.save_pretrained(torch_dir, safe_serialization=True)
    out = os.path.join(MODELS, f"tiny-{name}")
    if os.path.isdir(out):
        shutil.rmtree(out)
    from optimum.exporters.onnx import main_export

    # A path relative to the repository root: the exporter writes it into every config's
    # _name_or_path, and a rebuild elsewhere must write the same files.
    os.chdir(ROOT)
    main_export(
        model_name_or_path=os.path.relpath(torch_dir, ROOT), output=out, task="text-to-image", device="cpu",
        library_name="diffusers", do_validation=True, local_files_only=True,
    )
    return out


# ---------------------------------------------------------------- reference values

def f32(array):
    a = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    return {"dtype": "float32", "shape": list(a.shape), "base64": base64.b64encode(a.astype("<f4").tobytes()).decode()}


def ids(array):
    return np.asarray(array).astype(np.int64).reshape(-1).tolist()


def image_tensor():
    """fixtures/images/test-64.png as the pipelines' VaeImageProcessor makes it: [1, 3, 64, 64] in [−1, 1]."""
    rgb = np.asarray(Image.open(IMAGE).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb.transpose(2, 0, 1)[None].copy()) * 2.0 - 1.0


def latent_of(pipe, image):
    """The pipelines' img2img latent from the VAE mean: (mean − shift) · scaling (shift 0 for SDXL)."""
    cfg = pipe.vae.config
    mean = pipe.vae.encode(image).latent_dist.mean
    shift = cfg.shift_factor if cfg.shift_factor is not None else 0.0
    return mean, (mean - shift) * cfg.scaling_factor


def noise_for(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def tokenizer_ids(pipe, prompt):
    out = {}
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        tok = getattr(pipe, name, None)
        if tok is None:
            continue
        if isinstance(tok, CLIPTokenizer):
            length = tok.model_max_length
        else:
            length = 512 if isinstance(pipe, FluxPipeline) and pipe.transformer.config.guidance_embeds else 256
        out[name] = ids(tok(prompt, padding="max_length", max_length=length, truncation=True).input_ids)
    return out


def encode_all(pipe, encode):
    """encoders[] entries and {prompt: (prompt_embeds, pooled)} for PROMPTS; encode(prompt) -> (emb, pooled)."""
    encoders, conds = [], {}
    for prompt in PROMPTS:
        emb, pooled = encode(prompt)
        encoders.append({"prompt": prompt, "input_ids": tokenizer_ids(pipe, prompt),
                         "prompt_embeds": f32(emb), "pooled_prompt_embeds": f32(pooled)})
        conds[prompt] = (emb, pooled)
    return encoders, conds


def predictions(levels, prompts, conds, run):
    """One entry per (noise level, prompt): the raw network output and ε̂; run(level, cond) -> (raw, ε̂)."""
    out = []
    for k, level in enumerate(levels):
        for prompt in prompts:
            raw, eps_hat = run(level, conds[prompt])
            out.append({"level": k, "prompt": prompt, "model_output": f32(raw), "eps_hat": f32(eps_hat)})
    return out


def stored_levels(levels):
    return [{k: (f32(v) if torch.is_tensor(v) else v) for k, v in level.items()} for level in levels]


def flow_levels(latent):
    """x_t = (1 − t)·latent + t·noise for each t of FLOW_TS, the noise seeded per level."""
    levels = []
    for k, t in enumerate(FLOW_TS):
        eps = noise_for(latent.shape, 100 + k)
        levels.append({"t": t, "noise": eps, "x_t": (1 - t) * latent + t * eps})
    return levels


def sdxl_reference(pipe, image):
    mean, latent = latent_of(pipe, image)
    negatives = {}

    def encode(prompt):
        emb, neg, pooled, neg_pooled = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=True)
        negatives["zeros"] = (neg, neg_pooled)
        return emb, pooled

    encoders, conds = encode_all(pipe, encode)
    # The unconditional the model asks for (force_zeros_for_empty_prompt): zeros of the same shapes.
    conds[None] = negatives["zeros"]
    h, w = image.shape[-2:]
    time_ids = pipe._get_add_time_ids(
        (h, w), (0, 0), (h, w), dtype=torch.float32,
        text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim,
    )
    abar = pipe.scheduler.alphas_cumprod.to(torch.float32)
    levels = []
    for k, timestep in enumerate(SDXL_TIMESTEPS):
        eps = noise_for(latent.shape, 100 + k)
        a = abar[int(timestep)]
        levels.append({"timestep": timestep, "alpha_bar": float(a), "noise": eps,
                       "x_t": a.sqrt() * latent + (1 - a).sqrt() * eps})

    def run(level, cond):
        emb, pooled = cond
        out = pipe.unet(level["x_t"], torch.tensor(level["timestep"]), encoder_hidden_states=emb,
                        added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        return out, out

    return {
        "family": "sdxl",
        "conventions": {
            "force_zeros_for_empty_prompt": pipe.config.force_zeros_for_empty_prompt,
            "unconditional": "prompt null: zeros of prompt_embeds' and pooled_prompt_embeds' shapes (stored)",
            "time_ids": "(original_h, original_w, crop_top, crop_left, target_h, target_w) in pixels",
            "x_t": "sqrt(alpha_bar)·latent + sqrt(1 − alpha_bar)·noise, alpha_bar = scheduler.alphas_cumprod[timestep]",
            "unet": "sample = x_t, timestep = the level's timestep (float32 scalar), encoder_hidden_states ="
                    " prompt_embeds, text_embeds = pooled_prompt_embeds, time_ids",
            "prediction": "epsilon: eps_hat = model_output",
        },
        "unconditional": {"prompt_embeds": f32(conds[None][0]), "pooled_prompt_embeds": f32(conds[None][1])},
        "time_ids": f32(time_ids),
        "vae_mean": f32(mean), "latent": f32(latent), "encoders": encoders,
        "levels": stored_levels(levels),
        "predictions": predictions(levels, [PROMPTS[0], PROMPTS[1], PROMPTS[2], None], conds, run),
    }


def sd3_reference(pipe, image):
    mean, latent = latent_of(pipe, image)

    def encode(prompt):
        emb, _, pooled, _ = pipe.encode_prompt(prompt, prompt_2=None, prompt_3=None, device="cpu",
                                               do_classifier_free_guidance=False, max_sequence_length=256)
        return emb, pooled

    encoders, conds = encode_all(pipe, encode)
    levels = flow_levels(latent)
    for level in levels:
        level["timestep"] = torch.tensor([1000.0 * level["t"]], dtype=torch.float32)

    def run(level, cond):
        emb, pooled = cond
        v = pipe.transformer(hidden_states=level["x_t"], timestep=level["timestep"], encoder_hidden_states=emb,
                             pooled_projections=pooled).sample
        return v, level["x_t"] + (1 - level["t"]) * v

    return {
        "family": "sd3",
        "conventions": {
            "x_t": "(1 − t)·latent + t·noise",
            "transformer": "hidden_states = x_t, timestep = 1000·t ([B] float32), encoder_hidden_states ="
                           " prompt_embeds (77 CLIP rows zero-padded to T5's width, then 256 T5 rows),"
                           " pooled_projections = pooled_prompt_embeds",
            "prediction": "velocity v ≈ noise − latent; eps_hat = x_t + (1 − t)·v",
            "max_sequence_length": 256,
            "unconditional": "the prompt \"\" encoded (SD3 has no force_zeros_for_empty_prompt)",
        },
        "vae_mean": f32(mean), "latent": f32(latent), "encoders": encoders,
        "levels": stored_levels(levels),
        "predictions": predictions(levels, PROMPTS[:3], conds, run),
    }


def flux_reference(pipe, image):
    dev = pipe.transformer.config.guidance_embeds
    max_len = 512 if dev else 256
    mean, latent = latent_of(pipe, image)
    b, c, h, w = latent.shape
    img_ids = pipe._prepare_latent_image_ids(b, h // 2, w // 2, "cpu", torch.float32)
    txt = {}

    def encode(prompt):
        emb, pooled, txt_ids = pipe.encode_prompt(prompt, prompt_2=None, device="cpu", max_sequence_length=max_len)
        txt["ids"] = txt_ids
        return emb, pooled

    encoders, conds = encode_all(pipe, encode)
    guidance = torch.full([1], FLUX_GUIDANCE, dtype=torch.float32) if dev else None
    levels = flow_levels(latent)
    for level in levels:
        level["timestep"] = torch.tensor([level["t"]], dtype=torch.float32)
        level["hidden_states"] = pipe._pack_latents(level["x_t"], b, c, h, w)

    def run(level, cond):
        emb, pooled = cond
        v = pipe.transformer(hidden_states=level["hidden_states"], timestep=level["timestep"], guidance=guidance,
                             pooled_projections=pooled, encoder_hidden_states=emb, txt_ids=txt["ids"],
                             img_ids=img_ids).sample
        scale = pipe.vae_scale_factor
        v_latent = pipe._unpack_latents(v, h * scale, w * scale, scale)
        return v, level["x_t"] + (1 - level["t"]) * v_latent

    ref = {
        "family": "flux" if dev else "flux-schnell",
        "conventions": {
            "x_t": "(1 − t)·latent + t·noise",
            "transformer": "hidden_states = _pack_latents(x_t) [B, (H/2)(W/2), 4C] (stored per level), timestep = t"
                           " ([B] float32; the model multiplies by 1000 inside), encoder_hidden_states ="
                           " prompt_embeds (T5), pooled_projections = pooled_prompt_embeds (CLIP pooler_output),"
                           " img_ids, txt_ids (int64 in the graph)" + (", guidance ([B] float32)" if dev else ""),
            "prediction": "velocity v ≈ noise − latent, packed; eps_hat = x_t + (1 − t)·_unpack_latents(v)",
            "max_sequence_length": max_len,
            "unconditional": ("none trained (guidance-distilled); \"\" is only a prompt" if dev
                              else "\"\" is only a prompt"),
        },
        "img_ids": f32(img_ids), "txt_ids": f32(txt["ids"]),
        "vae_mean": f32(mean), "latent": f32(latent), "encoders": encoders,
        "levels": stored_levels(levels),
        "predictions": predictions(levels, PROMPTS[:3], conds, run),
    }
    if dev:
        ref["guidance"] = FLUX_GUIDANCE
    return ref


REFERENCES = {"sdxl": sdxl_reference, "sd3": sd3_reference, "flux": flux_reference, "flux-schnell": flux_reference}


# ---------------------------------------------------------------- onnx description and check

ONNX_TYPES = {1: "float32", 10: "float16", 16: "bfloat16", 7: "int64", 6: "int32", 11: "float64"}


def describe(folder):
    """Every graph's inputs and outputs: name, element type, shape (symbolic dims as written)."""
    import onnx

    graphs = {}
    for part in sorted(os.listdir(folder)):
        path = os.path.join(folder, part, "model.onnx")
        if not os.path.isfile(path):
            continue
        model = onnx.load(path, load_external_data=False)

        def rows(values):
            out = []
            for v in values:
                t = v.type.tensor_type
                dims = [d.dim_param or d.dim_value for d in t.shape.dim]
                out.append({"name": v.name, "dtype": ONNX_TYPES.get(t.elem_type, t.elem_type), "shape": dims})
            return out

        graphs[part] = {"opset": model.opset_import[0].version, "inputs": rows(model.graph.input),
                        "outputs": rows(model.graph.output), "bytes": os.path.getsize(path)}
    return graphs


def decode(entry):
    return np.frombuffer(base64.b64decode(entry["base64"]), dtype="<f4").reshape(entry["shape"])


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def session(folder, part):
    return ort.InferenceSession(os.path.join(folder, part, "model.onnx"), providers=["CPUExecutionProvider"])


def feed_for(sess, values):
    """Casts each value to the graph input's element type (ids may be int64, timestep float or int)."""
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(double)": np.float64}
    return {i.name: np.asarray(values[i.name]).astype(types[i.type]) for i in sess.get_inputs() if i.name in values}


def onnx_check(folder, ref, pipe, image):
    """Largest relative difference between each exported graph and the PyTorch values."""
    errs = collections.defaultdict(float)
    enc = session(folder, "vae_encoder")
    params = enc.run(None, {"sample": image.numpy()})[0]
    c = params.shape[1] // 2
    errs["vae_encoder"] = rel_err(params[:, :c], decode(ref["vae_mean"]))
    fam = ref["family"]
    text_parts = [p for p in ("text_encoder", "text_encoder_2", "text_encoder_3") if os.path.isdir(os.path.join(folder, p))]
    sessions = {p: session(folder, p) for p in text_parts}
    for e in ref["encoders"]:
        outs = {}
        for part, tok_name in zip(text_parts, ("tokenizer", "tokenizer_2", "tokenizer_3")):
            s = sessions[part]
            res = s.run(None, feed_for(s, {"input_ids": np.array([e["input_ids"][tok_name]])}))
            outs[part] = dict(zip([o.name for o in s.get_outputs()], res))
        want = decode(e["prompt_embeds"])
        pooled_want = decode(e["pooled_prompt_embeds"])
        if fam == "sdxl":
            n1 = len([k for k in outs["text_encoder"] if k.startswith("hidden_states.")])
            n2 = len([k for k in outs["text_encoder_2"] if k.startswith("hidden_states.")])
            got = np.concatenate([outs["text_encoder"][f"hidden_states.{n1 - 2}"],
                                  outs["text_encoder_2"][f"hidden_states.{n2 - 2}"]], -1)
            pooled = outs["text_encoder_2"]["text_embeds"]
        elif fam == "sd3":
            n1 = len([k for k in outs["text_encoder"] if k.startswith("hidden_states.")])
            n2 = len([k for k in outs["text_encoder_2"] if k.startswith("hidden_states.")])
            clip = np.concatenate([outs["text_encoder"][f"hidden_states.{n1 - 2}"],
                                   outs["text_encoder_2"][f"hidden_states.{n2 - 2}"]], -1)
            t5 = outs["text_encoder_3"]["last_hidden_state"]
            clip = np.pad(clip, ((0, 0), (0, 0), (0, t5.shape[-1] - clip.shape[-1])))
            got = np.concatenate([clip, t5], 1)
            pooled = np.concatenate([outs["text_encoder"]["text_embeds"], outs["text_encoder_2"]["text_embeds"]], -1)
        else:
            got = outs["text_encoder_2"]["last_hidden_state"]
            pooled = outs["text_encoder"]["pooler_output"]
        errs["text_encoders.prompt_embeds"] = max(errs["text_encoders.prompt_embeds"], rel_err(got, want))
        errs["text_encoders.pooled"] = max(errs["text_encoders.pooled"], rel_err(pooled, pooled_want))
    by_prompt = {e["prompt"]: e for e in ref["encoders"]}
    levels = ref["levels"]
    if fam == "sdxl":
        s = session(folder, "unet")
        for p in ref["predictions"]:
            cond = ref["unconditional"] if p["prompt"] is None else by_prompt[p["prompt"]]
            level = levels[p["level"]]
            feed = feed_for(s, {"sample": decode(level["x_t"]), "timestep": np.array(level["timestep"]),
                                "encoder_hidden_states": decode(cond["prompt_embeds"]),
                                "text_embeds": decode(cond["pooled_prompt_embeds"]),
                                "time_ids": decode(ref["time_ids"])})
            errs["unet"] = max(errs["unet"], rel_err(s.run(None, feed)[0], decode(p["model_output"])))
    else:
        s = session(folder, "transformer")
        for p in ref["predictions"]:
            e = by_prompt[p["prompt"]]
            level = levels[p["level"]]
            values = {"hidden_states": decode(level["x_t" if fam == "sd3" else "hidden_states"]),
                      "timestep": decode(level["timestep"]), "encoder_hidden_states": decode(e["prompt_embeds"]),
                      "pooled_projections": decode(e["pooled_prompt_embeds"])}
            if fam != "sd3":
                values["img_ids"] = decode(ref["img_ids"])
                values["txt_ids"] = decode(ref["txt_ids"])
                if "guidance" in ref:
                    values["guidance"] = np.full([1], ref["guidance"], np.float32)
            out = s.run(None, feed_for(s, values))[0]
            errs["transformer"] = max(errs["transformer"], rel_err(out, decode(p["model_output"])))
    return dict(errs)


def write_reference(folder, ref):
    with open(os.path.join(folder, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
        f.write("\n")


def build(name):
    work = os.path.join(WORK, name)
    os.makedirs(work, exist_ok=True)
    pipe = FAMILIES[name](work).to(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    out = save_and_export(name, pipe)
    # Reload the saved pipeline: the reference is what its files compute, as a user would load it.
    pipe = type(pipe).from_pretrained(os.path.join(work, "pipeline"), local_files_only=True).to(torch.float32)
    image = image_tensor()
    with torch.no_grad():
        ref = REFERENCES[name](pipe, image)
    ref["image"] = "fixtures/images/test-64.png (RGB / 255 · 2 − 1, [1, 3, 64, 64])"
    ref["versions"] = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                       "transformers": transformers.__version__, "onnxruntime": ort.__version__}
    ref["graphs"] = describe(out)
    ref["onnx_check"] = onnx_check(out, ref, pipe, image)
    write_reference(out, ref)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"tiny-{name}: {size} bytes; onnx vs torch (max rel): {ref['onnx_check']}")
    return ref


def main():
    names = sys.argv[1:] or list(FAMILIES)
    for name in names:
        build(name)


if __name__ == "__main__":
    main()
