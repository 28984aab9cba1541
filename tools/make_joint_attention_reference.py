"""Joint-attention maps of the tiny SD 3 and FLUX.1 pipelines, as PyTorch computes them (issue 25).

The maps are read the way wooyeolbaek/attention-map-diffusers reads them: its processors replace
scaled_dot_product_attention by softmax(Q·Kᵀ·scale) written out, and keep the block of image
queries over text keys (SD 3's joint sequence is [image; text]: `probs[:, :, :image_length,
image_length:]`; FLUX.1's is [text; image]: `probs[:, :, text_length:, :text_length]`). Here the
one function every diffusers 0.36 processor of these models calls,
torch.nn.functional.scaled_dot_product_attention, is replaced by that explicit form (same output),
which records every call in block order: SD 3's transformer_blocks, FLUX.1's double-stream
transformer_blocks then single_transformer_blocks (whose sequence is the same [text; image]
concatenation; attention-map-diffusers skips them, infodiff reads them too).

Concept-attention maps (ConceptAttention, helblazer811/ConceptAttention, its diffusers FLUX code
concept_attention/diffusers/flux/dit_block.py and pipeline.py) with the prompt's own tokens as the
concepts: a forward hook on each transformer block's attention module takes its two outputs
(image: after to_out, text: after to_add_out), einsum("batch concepts dim, batch patches dim ->
batch concepts patches"), softmax over patches (the pipeline's `torch.softmax(maps, dim=-1)`).
Blocks without a projected text output (SD 3's last, context_pre_only) are skipped; ConceptAttention
keeps blocks 10–17, and the tiny transformers, which have fewer, keep all theirs.

Fixed inputs: fixtures/models/tiny-*/reference.json's first prompt and level 1 (t = 0.5), fed to
diffusers' transformer exactly as build_family_pipelines.py's reference does. Written to
fixtures/attention/joint-reference.json, per family and layer: dims [heads, h·w, T]; the whole
block's row sums per (head, row) (what the image row gives the text, < 1); and the columns of a
few token positions per (head, row), so a reader checks every value of those columns and the
block's total per row.

It also writes fixtures/attention/tiny-sd3-fused-transformer.onnx: tiny SD 3's transformer through
onnxruntime's transformer optimizer (model_type "mmdit", what `optimum-cli ... --optimize` runs),
whose attention is com.microsoft MultiHeadAttention with no Softmax left (the same optimizer fails
on the tiny FLUX.1 transformer in onnxruntime 1.23.2: fuse_simplified_layer_norm raises).

    out/venv-tools/bin/python tools/make_joint_attention_reference.py
"""
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from build_family_pipelines import PROMPT, f32, latent_of, image_tensor, WORK  # noqa: E402
from diffusers import FluxPipeline, StableDiffusion3Pipeline  # noqa: E402

OUT = os.path.join(ROOT, "fixtures", "attention", "joint-reference.json")
LEVEL = 1  # t = 0.5
# token columns stored in full: CLIP's first 16 and T5's first 16 (SD 3), T5's first 16 (FLUX)
SD3_COLUMNS = list(range(16)) + [77 + i for i in range(16)]
FLUX_COLUMNS = list(range(16))

recorded = []
outputs = []  # per block with a text output: (image attention output, text attention output)
CONCEPT_BLOCKS = list(range(10, 18))
_sdpa = torch.nn.functional.scaled_dot_product_attention


def explicit_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
    """attention-map-diffusers' scaled_dot_product_attention: softmax(QKᵀ·scale) kept."""
    assert attn_mask is None and not is_causal and dropout_p == 0.0 and not any(kwargs.values()), kwargs
    scale = 1 / np.sqrt(query.size(-1)) if scale is None else scale
    probs = torch.softmax(query @ key.transpose(-2, -1) * scale, dim=-1)
    recorded.append(probs.detach().clone())
    return probs @ value


def block_of(probs, text, image_first):
    """[B, H, N, N] -> image rows × text columns [B, H, hw, T]."""
    n = probs.shape[-1]
    return probs[:, :, : n - text, n - text:] if image_first else probs[:, :, text:, :text]


def stored(blocks, columns):
    layers = []
    for name, block in blocks:
        b = block[0].double().numpy()  # one item: [H, hw, T]
        layers.append({"node": name, "dims": list(b.shape), "rowSums": f32(b.sum(-1)),
                       "columns": columns, "values": f32(b[:, :, columns])})
    return layers


def run_sd3():
    pipe = StableDiffusion3Pipeline.from_pretrained(os.path.join(WORK, "sd3", "pipeline"))
    _, latent = latent_of(pipe, image_tensor())
    ref = json.load(open(os.path.join(ROOT, "fixtures", "models", "tiny-sd3", "reference.json")))
    level = ref["levels"][LEVEL]
    x_t = torch.from_numpy(decode(level["x_t"]))
    emb, _, pooled, _ = pipe.encode_prompt(PROMPT, prompt_2=None, prompt_3=None, device="cpu",
                                           do_classifier_free_guidance=False, max_sequence_length=256)
    recorded.clear()
    traced(pipe.transformer)(hidden_states=x_t, timestep=torch.tensor([1000.0 * level["t"]]),
                     encoder_hidden_states=emb, pooled_projections=pooled)
    names = [f"/transformer_blocks.{i}/attn/Softmax" for i in range(len(recorded))]
    text = emb.shape[1]
    return {"t": level["t"], "text": text, "order": "image, text",
            "layers": stored([(n, block_of(p, text, True)) for n, p in zip(names, recorded)], SD3_COLUMNS),
            "concept": concept_maps(pipe.transformer, SD3_COLUMNS)}


def run_flux():
    pipe = FluxPipeline.from_pretrained(os.path.join(WORK, "flux", "pipeline"))
    ref = json.load(open(os.path.join(ROOT, "fixtures", "models", "tiny-flux", "reference.json")))
    level = ref["levels"][LEVEL]
    x_t = torch.from_numpy(decode(level["x_t"]))
    b, c, h, w = x_t.shape
    img_ids = pipe._prepare_latent_image_ids(b, h // 2, w // 2, "cpu", torch.float32)
    emb, pooled, txt_ids = pipe.encode_prompt(PROMPT, prompt_2=None, device="cpu", max_sequence_length=512)
    recorded.clear()
    traced(pipe.transformer)(hidden_states=pipe._pack_latents(x_t, b, c, h, w), timestep=torch.tensor([level["t"]]),
                     guidance=torch.full([1], ref["guidance"], dtype=torch.float32),
                     pooled_projections=pooled, encoder_hidden_states=emb, txt_ids=txt_ids, img_ids=img_ids)
    double = len(pipe.transformer.transformer_blocks)
    names = [f"/transformer_blocks.{i}/attn/Softmax" if i < double
             else f"/single_transformer_blocks.{i - double}/attn/Softmax" for i in range(len(recorded))]
    text = emb.shape[1]
    return {"t": level["t"], "text": text, "order": "text, image",
            "layers": stored([(n, block_of(p, text, False)) for n, p in zip(names, recorded)], FLUX_COLUMNS),
            "concept": concept_maps(pipe.transformer, FLUX_COLUMNS)}


def traced(transformer):
    """The transformer with scaled_dot_product_attention replaced during its call only (the text
    encoders use it too, with masks), and its double-stream blocks' attention outputs kept."""
    def keep(module, args, result):
        outputs.append((result[0].detach().clone(), result[1].detach().clone()))

    def call(**inputs):
        outputs.clear()
        blocks = [b for b in transformer.transformer_blocks if not b.attn.context_pre_only]
        hooks = [b.attn.register_forward_hook(keep) for b in blocks]
        torch.nn.functional.scaled_dot_product_attention = explicit_sdpa
        try:
            return transformer(**inputs)
        finally:
            torch.nn.functional.scaled_dot_product_attention = _sdpa
            for hook in hooks:
                hook.remove()
    return call


def concept_maps(transformer, columns):
    """ConceptAttention's maps with the prompt's tokens as concepts: [1, P, T] per kept block."""
    indices = [i for i, b in enumerate(transformer.transformer_blocks) if not b.attn.context_pre_only]
    chosen = [k for k, i in enumerate(indices) if i in CONCEPT_BLOCKS] or list(range(len(indices)))
    blocks = []
    for k in chosen:
        image, text = outputs[k]
        scores = torch.einsum("btd,bpd->btp", text, image)
        maps = torch.softmax(scores, dim=-1).transpose(1, 2)  # [B, P, T]
        blocks.append((f"/transformer_blocks.{indices[k]}", maps[:, None]))
    return stored(blocks, columns)


def decode(s):
    import base64
    return np.frombuffer(base64.b64decode(s["base64"]), dtype="<f4").reshape(s["shape"]).copy()


def write_fused():
    from onnxruntime.transformers.optimizer import optimize_model
    source = os.path.join(ROOT, "fixtures", "models", "tiny-sd3", "transformer", "model.onnx")
    fused = optimize_model(source, model_type="mmdit", num_heads=0, hidden_size=0, opt_level=0)
    fused.save_model_to_file(os.path.join(ROOT, "fixtures", "attention", "tiny-sd3-fused-transformer.onnx"))


def main():
    write_fused()
    with torch.no_grad():
        out = {"prompt": PROMPT, "level": LEVEL,
               "hook": "torch.nn.functional.scaled_dot_product_attention replaced by softmax(QKᵀ·scale)·V "
                       "(attention-map-diffusers' form); block = image queries × text keys, not renormalised",
               "tiny-sd3": run_sd3(), "tiny-flux": run_flux()}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    for family in ("tiny-sd3", "tiny-flux"):
        print(family, [(l["node"], l["dims"]) for l in out[family]["layers"] + out[family]["concept"]])


if __name__ == "__main__":
    main()
