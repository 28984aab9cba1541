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

Concept-attention maps of extra concept words (ConceptAttention's own use: concepts the user names,
streamed beside the prompt without changing the image): ConceptAttention's diffusers FLUX code run
on the tiny FLUX.1 transformer. Each concept is encoded by T5 alone, padded to 64 tokens, and its
first token kept (`encode_concepts`: `_get_t5_prompt_embeds(concepts, max_sequence_length=64)[:,
0]`); CLIP's pooled output of the concepts joined by spaces gives the concept stream's own time-text
embedding (`concept_temb`); the concept ids are zeros. Through every double-stream block the
concept stream is FluxTransformerBlockWithConceptAttention's: norm1_context with concept_temb, the
block's attention called with the block's normalised image states and the concept states (concept
rows attend to [concepts; image] keys, the rotary embedding of [concept ids; image ids]), its text
output (after to_add_out) dotted with the prompt call's image output (after to_out), the concept
residual and ff_context updates; the image and text streams are diffusers' own block, untouched.
Maps: softmax over patches per kept block, [1, P, C]; the transformer's output with the concept
stream is checked equal to the output without it.

Fixed inputs: fixtures/models/tiny-*/reference.json's first prompt and level 1 (t = 0.5), fed to
diffusers' transformer exactly as build_family_pipelines.py's reference does. Written to
fixtures/attention/joint-reference.json, per family and layer: dims [heads, h·w, T]; the whole
block's row sums per (head, row) (what the image row gives the text, < 1); and the columns of a
few token positions per (head, row), so a reader checks every value of those columns and the
block's total per row. The concept words' maps go to fixtures/attention/concept-words-reference.json,
every value ([P, C] per kept block).

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
from diffusers import FluxPipeline, FluxTransformer2DModel, StableDiffusion3Pipeline  # noqa: E402

OUT = os.path.join(ROOT, "fixtures", "attention", "joint-reference.json")
CONCEPT_OUT = os.path.join(ROOT, "fixtures", "attention", "concept-words-reference.json")
# extra concept words: three of the prompt's objects and one word it does not hold
CONCEPT_WORDS = ["circle", "square", "grass", "sky"]
THREE_BLOCKS = os.path.join(ROOT, "fixtures", "attention", "flux-three-blocks-transformer.onnx")
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


def flux_inputs():
    """The tiny FLUX.1 pipeline and its transformer's inputs at LEVEL of its reference (PROMPT)."""
    pipe = FluxPipeline.from_pretrained(os.path.join(WORK, "flux", "pipeline"))
    ref = json.load(open(os.path.join(ROOT, "fixtures", "models", "tiny-flux", "reference.json")))
    level = ref["levels"][LEVEL]
    x_t = torch.from_numpy(decode(level["x_t"]))
    b, c, h, w = x_t.shape
    img_ids = pipe._prepare_latent_image_ids(b, h // 2, w // 2, "cpu", torch.float32)
    emb, pooled, txt_ids = pipe.encode_prompt(PROMPT, prompt_2=None, device="cpu", max_sequence_length=512)
    inputs = dict(hidden_states=pipe._pack_latents(x_t, b, c, h, w), timestep=torch.tensor([level["t"]]),
                  guidance=torch.full([1], ref["guidance"], dtype=torch.float32),
                  pooled_projections=pooled, encoder_hidden_states=emb, txt_ids=txt_ids, img_ids=img_ids)
    return pipe, level, inputs


def run_flux():
    pipe, level, inputs = flux_inputs()
    emb = inputs["encoder_hidden_states"]
    recorded.clear()
    traced(pipe.transformer)(**inputs)
    double = len(pipe.transformer.transformer_blocks)
    names = [f"/transformer_blocks.{i}/attn/Softmax" if i < double
             else f"/single_transformer_blocks.{i - double}/attn/Softmax" for i in range(len(recorded))]
    text = emb.shape[1]
    return {"t": level["t"], "text": text, "order": "text, image",
            "layers": stored([(n, block_of(p, text, False)) for n, p in zip(names, recorded)], FLUX_COLUMNS),
            "concept": concept_maps(pipe.transformer, FLUX_COLUMNS)}


def concept_stream(tr, inputs, concept_embeds, clip_vec):
    """The transformer's output and per double-stream block the concept scores [1, C, P]: the
    transformer run with ConceptAttention's concept stream (FluxTransformer2DModelWithConceptAttention
    and FluxTransformerBlockWithConceptAttention.forward) beside diffusers' own blocks."""
    timestep, guidance = inputs["timestep"], inputs["guidance"]
    concept_ids = torch.zeros(concept_embeds.shape[1], 3)
    # FluxTransformer2DModelWithConceptAttention.forward: the concept stream's embeddings
    concept_temb = tr.time_text_embed(timestep * 1000, guidance * 1000, clip_vec)
    concept_rotary_emb = tr.pos_embed(torch.cat((concept_ids, inputs["img_ids"]), dim=0))
    stream = {"states": tr.context_embedder(concept_embeds)}
    maps = []

    def with_concepts(block, index):
        original = block.forward

        def forward(hidden_states, encoder_hidden_states, temb, image_rotary_emb=None, joint_attention_kwargs=None):
            # FluxTransformerBlockWithConceptAttention.forward, its concept part
            norm_hidden_states, *_ = block.norm1(hidden_states, emb=temb)
            norm_encoder, *_ = block.norm1_context(encoder_hidden_states, emb=temb)
            attn_output, _ = block.attn(hidden_states=norm_hidden_states, encoder_hidden_states=norm_encoder,
                                        image_rotary_emb=image_rotary_emb)
            concepts = stream["states"]
            norm_concepts, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.norm1_context(concepts, emb=concept_temb)
            _, concept_attn_output = block.attn(hidden_states=norm_hidden_states, encoder_hidden_states=norm_concepts,
                                                image_rotary_emb=concept_rotary_emb)
            maps.append((index, torch.einsum("bcd,bpd->bcp", concept_attn_output, attn_output)))
            concepts = concepts + gate_msa.unsqueeze(1) * concept_attn_output
            norm_concepts = block.norm2_context(concepts) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
            stream["states"] = concepts + gate_mlp.unsqueeze(1) * block.ff_context(norm_concepts)
            # the image and text streams: diffusers' own block, as ConceptAttention's computes them
            return original(hidden_states, encoder_hidden_states, temb, image_rotary_emb, joint_attention_kwargs)
        return forward

    originals = [block.forward for block in tr.transformer_blocks]
    for i, block in enumerate(tr.transformer_blocks):
        block.forward = with_concepts(block, i)
    try:
        output = tr(**inputs)[0]
    finally:
        for block, forward in zip(tr.transformer_blocks, originals):
            block.forward = forward
    return output, maps


def stored_concept_maps(maps):
    """The kept blocks' maps, the pipeline's torch.softmax(maps, dim=-1) (over patches): [P, C]."""
    kept = [(i, m) for i, m in maps if i in CONCEPT_BLOCKS] or maps
    layers = []
    for i, scores in kept:
        m = torch.softmax(scores, dim=-1)[0].transpose(0, 1).double().numpy()
        layers.append({"node": f"/transformer_blocks.{i}", "dims": list(m.shape), "values": f32(m)})
    return layers


def run_flux_concept_words():
    """ConceptAttention's concept stream for CONCEPT_WORDS on the tiny FLUX.1 pipeline."""
    pipe, level, inputs = flux_inputs()
    # ConceptAttention's encode_concepts
    concept_embeds = pipe._get_t5_prompt_embeds(prompt=CONCEPT_WORDS, num_images_per_prompt=1,
                                                max_sequence_length=64, device="cpu")[:, 0, :].unsqueeze(0)
    clip_vec = pipe._get_clip_prompt_embeds(prompt=" ".join(CONCEPT_WORDS), num_images_per_prompt=1, device="cpu")
    output, maps = concept_stream(pipe.transformer, inputs, concept_embeds, clip_vec)
    assert torch.equal(pipe.transformer(**inputs)[0], output), "the concept stream changed the output"
    return {"prompt": PROMPT, "level": LEVEL, "t": level["t"], "concepts": CONCEPT_WORDS,
            "conceptTokens": 64, "layers": stored_concept_maps(maps)}


FLUX_INPUTS = ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids",
               "guidance"]


def export_flux_transformer(tr, inputs, path):
    """A FLUX.1 transformer exported as optimum exports the pipelines' (TorchScript, opset 18, the
    same input names and dynamic axes), so its attention stays unfused: the Softmax nodes are
    `/transformer_blocks.N/attn/Softmax` and `/single_transformer_blocks.N/attn/Softmax`. A model
    past protobuf's 2 GB leaves its weights in files beside `path` (torch's external data)."""
    # optimum's own patches, as main_export applies them to FLUX.1's transformer: the operators its
    # exporter rewrites (rms_norm, an explicit scaled_dot_product_attention…) and
    # FluxTransformerModelPatcher's rotary embedding
    import diffusers.models.transformers.transformer_flux as transformer_flux
    from optimum.exporters.onnx.model_patcher import UNSUPPORTED_OPS_PATCHING_SPEC, patched_apply_rotary_emb
    for spec in UNSUPPORTED_OPS_PATCHING_SPEC:
        setattr(spec.o, spec.name, spec.custom_op)
    rotary = transformer_flux.apply_rotary_emb
    transformer_flux.apply_rotary_emb = patched_apply_rotary_emb
    try:
        torch.onnx.export(tr, tuple(inputs[n] for n in FLUX_INPUTS), path, input_names=FLUX_INPUTS,
                          output_names=["out_hidden_states"], kwargs={"return_dict": False}, opset_version=18,
                          dynamo=False, dynamic_axes={
                              "hidden_states": {0: "batch_size", 1: "packed_height_width"},
                              "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
                              "pooled_projections": {0: "batch_size"}, "timestep": {0: "step"},
                              "img_ids": {0: "packed_height_width"}, "txt_ids": {0: "sequence_length"},
                              "guidance": {0: "batch_size"},
                              "out_hidden_states": {0: "batch_size", 1: "packed_height_width"}})
    finally:
        transformer_flux.apply_rotary_emb = rotary
        for spec in UNSUPPORTED_OPS_PATCHING_SPEC:
            setattr(spec.o, spec.name, spec.orig_op)


def run_three_blocks():
    """The concept stream through three double-stream blocks (the tiny pipelines have one): a tiny
    FLUX.1-dev transformer of 3 double- and 1 single-stream blocks, random weights (seed 5),
    exported as optimum exports the pipelines' (TorchScript, opset 18, the same input names), fed
    fixed random inputs: 8 text tokens, a 4×4 packed latent, 3 concepts given as T5 states."""
    torch.manual_seed(5)
    tr = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=3, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
        guidance_embeds=True, axes_dims_rope=(4, 6, 6),
    ).eval()
    g = torch.Generator().manual_seed(6)
    rand = lambda *shape: torch.randn(*shape, generator=g)
    img_ids = torch.zeros(16, 3)
    img_ids[:, 1], img_ids[:, 2] = torch.arange(16) // 4, torch.arange(16) % 4
    inputs = dict(hidden_states=rand(1, 16, 64), encoder_hidden_states=rand(1, 8, 32),
                  pooled_projections=rand(1, 16), timestep=torch.tensor([0.6]), img_ids=img_ids,
                  txt_ids=torch.zeros(8, 3), guidance=torch.tensor([1.0]))
    concept_embeds, clip_vec = rand(1, 3, 32), rand(1, 16)
    output, maps = concept_stream(tr, inputs, concept_embeds, clip_vec)
    assert torch.equal(tr(**inputs)[0], output), "the concept stream changed the output"
    export_flux_transformer(tr, inputs, THREE_BLOCKS)
    return {"inputs": {n: f32(inputs[n]) for n in FLUX_INPUTS},
            "concepts": {"concept_hidden_states": f32(concept_embeds), "concept_pooled_projections": f32(clip_vec)},
            "output": f32(output), "layers": stored_concept_maps(maps)}


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
    with torch.no_grad():
        words = {"tiny-flux": run_flux_concept_words(), "three-blocks": run_three_blocks()}
    with open(CONCEPT_OUT, "w") as f:
        json.dump(words, f, indent=1)
    for name, family in words.items():
        print(name, "concept words", [(l["node"], l["dims"]) for l in family["layers"]])
    for family in ("tiny-sd3", "tiny-flux"):
        print(family, [(l["node"], l["dims"]) for l in out[family]["layers"] + out[family]["concept"]])


if __name__ == "__main__":
    main()
