#!/usr/bin/env python3
"""Builds the exact-Gaussian fixtures of today's families: fixtures/models/exact-sdxl, exact-sd3 and
exact-flux (deterministic; issue 24, part 4 "Exact").

Run from the repository root in the tools' environment (numpy, onnx, onnxruntime and transformers;
`bash tools/python-env.sh` makes it):

    out/venv-tools/bin/python tools/build_family_fixtures.py

Each fixture is an export folder laid out as optimum-onnx exports the family (model_index.json,
scheduler/, tokenizer*/, text_encoder*/, unet/ or transformer/, vae_encoder/, vae_decoder/, each
graph with a config.json), whose graphs have optimum's input and output names, dtypes and ranks
(optimum/exporters/onnx/model_configs.py; the widths are tiny). The denoising network is the EXACT
one of Gaussian data in the latent, x ~ N(mu(condition), v·I), so every information quantity has a
closed form (REFERENCE §2):

  SDXL   (UNet, ε-prediction on the scaled-linear DDPM schedule)
         eps_hat = sqrt(1-s)(z - sqrt(s) mu)/(s v + 1 - s),  s = abar[round(timestep)]
  SD3    (transformer, rectified flow, timestep = 1000 t)
  FLUX   (transformer on packed 2×2 tokens, timestep = t, guidance g)
         v_hat = E[eps - x | x_t] = c (x_t - (1-t) mu) - mu,  c = (t - (1-t) v)/((1-t)² v + t²)
         (x_t = (1-t) x + t eps; then eps_hat = x_t + (1-t) v_hat = E[eps | x_t])

The mean depends on every piece of conditioning the family's pipeline builds, so a backend that
builds one differently gets a different, wrong number:

  SDXL   mu = b0 + gate(time_ids) ⊙ (A·m(encoder_hidden_states) + P·text_embeds)
         encoder_hidden_states = text_encoder hidden_states.{n-1} ⊕ text_encoder_2 hidden_states.{n-1}
         (the penultimate layers), text_embeds = text_encoder_2's projected pooled output,
         time_ids = (H, W, 0, 0, H, W) in pixels, gate = 1/4 + 2·exp(−(λ − 1)²)·(1 + 0.3·tanh(G·u))
         with u = time_ids/64 and λ = u·(1,1,0,0,1,1)/4 (highest at the image's own size); the null
         condition is zeros (force_zeros_for_empty_prompt), so mu_null = b0
  SD3    mu = b0 + A·m(encoder_hidden_states) + P·pooled_projections
         encoder_hidden_states = [pad(CLIP-L penultimate ⊕ CLIP-G penultimate, T5 width);
         T5 last_hidden_state at 256 tokens] along the sequence; pooled = CLIP-L ⊕ CLIP-G text_embeds
  FLUX   mu = b0 + g·(1 + Σ txt_ids/10)·(A·m(encoder_hidden_states) + P·pooled_projections),
         read for each packed token at the position its img_ids name (row·(w/2) + col), as a
         transformer places tokens by their ids; encoder_hidden_states = T5 at 512 tokens,
         pooled = CLIP pooler_output, txt_ids = 0, guidance g = 1 (infodiff's default)

with m(E) = Σ_p w_p E[p], w_p = (1 + cos(0.7 p)/2)/77 computed in the graph for any sequence length.
The text encoders are fixed linear "transformers" (token and position embeddings, layers that mix
each state with the causal mean (CLIP) or the mean (T5) of the sequence, CLIP's final map and pooled
EOS state, its projection), so their outputs, the layer a pipeline takes and the padding all matter.

truth.json next to each fixture: the token ids of each encoder, mu (flattened CHW, unpacked) and v
for every prompt the tests ask about, the image's latent, the conventions, and a sensitivity table:
what the estimators converge to under each wrong convention (closed form over the model's log-SNR
range), next to the truth, each verified here by Monte Carlo through onnxruntime.

The CLIP tokenizers are build_onnx_fixtures.py's tiny CLIP vocabulary (built from ../shared/clip,
as that tool does); the T5 tokenizer is a tiny Unigram tokenizer.json written by transformers'
T5TokenizerFast, in which "photo", "grass" and "painting" are several pieces (fixtures/tokenizers/
t5-tiny, 376 kB, would take a fixture past 1 MB). The ids are the ones transformers' tokenizers
give (CLIPTokenizer, T5TokenizerFast) as diffusers' pipelines call them. The build is
deterministic and takes about half a minute.
"""

import json
import math
import os
import re
import shutil
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_onnx_fixtures import (  # noqa: E402
    CONTEXT, betas_for, build_tiny_tokenizer, const, save, scalar_f, test_image, to_model_pixels,
    tokenize, vae_decoder_graph, vae_encoder_graph, write_json, write_tokenizer)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")
PIXELS = 64
SIDE = PIXELS // 8
# flow.ts TRAINED_LAW_DEVIATIONS: Φ⁻¹(0.999)
TRAINED_LAW_DEVIATIONS = 3.090232306167813

VARIANCE = 0.5
TARGET_FULL_INFORMATION = 6.0  # nats of ‖mu_main − mu_null‖²/(2v)
LOG2PIE = math.log(2 * math.pi * math.e)

CLIP_L = dict(width=8, layers=3)  # penultimate: hidden_states.2 (CLIP ViT-L: 12 layers, .11)
CLIP_G = dict(width=12, layers=4)  # penultimate: hidden_states.3 (OpenCLIP bigG: 32 layers, .31)
T5_WIDTH, T5_LAYERS, T5_POSITIONS = 32, 2, 512

MAIN = "a photo of a big red dog on the green grass"
FULL_PROMPTS = ["a red circle", MAIN, "a blue square"]
PID_WORDS = ("red", "dog")  # the tests' PID of MAIN
SIZE_AXIS = np.array([1.0, 1, 0, 0, 1, 1])  # time_ids/64 of the fixture's own 64-pixel image

# T5 pieces of the tiny Unigram vocabulary: whole words, a few words only as pieces (so word
# positions span several tokens), single letters as a fallback
T5_WORDS = ["a", "an", "of", "red", "blue", "green", "circle", "square", "dog", "cat", "on", "the",
            "big", "small", "and", "with", "sky", "tree", "car", "house", "left", "to"]
T5_SPLIT = {"photo": ["▁pho", "to"], "grass": ["▁gr", "ass"], "painting": ["▁paint", "ing"]}


def scalar_i(name, value):
    """An int64 scalar initializer (build_onnx_fixtures.const makes 0-d arrays 1-d)."""
    return numpy_helper.from_array(np.array(value, dtype=np.int64), name)


def rounded(values):
    """float32 values as JSON numbers (8 significant digits: float32 carries about 7)."""
    return [float(f"{float(x):.8g}") for x in np.asarray(values).reshape(-1)]


def write_compact_json(path, value):
    """JSON indented as write_json does, with each list of numbers on one line."""
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
    text = re.sub(r"\[\s*(-?[0-9][-+0-9.eE,\s]*?)\s*\]",
                  lambda m: "[" + re.sub(r",\s+", ",", m.group(1)) + "]", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


# ---------------------------------------------------------------- tokenizers

def t5_tokenizer(folder):
    """Writes the tiny T5 tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json
    as T5TokenizerFast saves them) and returns the loaded T5TokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("▁" + w, -3.0 - 0.01 * i) for i, w in enumerate(T5_WORDS)]
    pieces += [(p, -4.0) for split in T5_SPLIT.values() for p in split]
    pieces += [("▁", -6.0)] + [(chr(c), -8.0) for c in range(ord("a"), ord("z") + 1)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    fast = T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>",
                           unk_token="<unk>", extra_ids=0, additional_special_tokens=[],
                           model_max_length=512)
    fast.save_pretrained(folder)
    for extra in ("spiece.model", "added_tokens.json"):
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))
    loaded = T5TokenizerFast.from_pretrained(folder)
    for word, split in T5_SPLIT.items():
        assert loaded.tokenize(word) == split, (word, loaded.tokenize(word))
    return loaded


def t5_ids(tokenizer, prompt, length):
    """input_ids as diffusers' _get_t5_prompt_embeds asks for them."""
    return tokenizer(prompt, padding="max_length", max_length=length, truncation=True,
                     add_special_tokens=True).input_ids


class ClipTokenizers:
    """The tiny CLIP vocabulary, tokenized as build_onnx_fixtures does, checked against
    transformers' CLIPTokenizer on the files written."""

    def __init__(self):
        self.vocab, self.merges, self.ranks = build_tiny_tokenizer()
        self.checked = {}

    def write(self, folder, pad):
        write_tokenizer(folder, self.vocab, self.merges, pad)
        from transformers import CLIPTokenizer
        self.checked[pad] = CLIPTokenizer.from_pretrained(folder)

    def ids(self, prompt, pad):
        ids = tokenize(prompt, self.vocab, self.ranks, self.vocab[pad])
        reference = self.checked[pad](prompt, padding="max_length", max_length=CONTEXT,
                                      truncation=True).input_ids
        assert ids == reference, (prompt, pad)
        return ids


# ---------------------------------------------------------------- text encoders (numpy + ONNX)

def clip_params(rng, vocab_size, width, layers):
    scale = 1 / math.sqrt(width)
    return dict(
        width=width, layers=layers,
        embedding=rng.standard_normal((vocab_size, width)),
        positions=0.3 * rng.standard_normal((CONTEXT, width)),
        mix=[(np.eye(width) + 0.5 * scale * rng.standard_normal((width, width)),
              0.8 * scale * rng.standard_normal((width, width))) for _ in range(layers)],
        # the final map scales the states (as CLIP's final layer norm does), so the last layer is
        # not the penultimate one by a little
        final=(2 * np.eye(width) + 1.2 * scale * rng.standard_normal((width, width)),
               0.2 * rng.standard_normal(width)),
        projection=scale * rng.standard_normal((width, width)))


def causal_mean(length):
    lower = np.tril(np.ones((length, length)))
    return lower / lower.sum(axis=1, keepdims=True)


def clip_forward(p, ids):
    """hidden_states (embeddings + each layer), last_hidden_state, pooler_output, text_embeds."""
    ids = np.asarray(ids)
    h = p["embedding"][ids] + p["positions"][: len(ids)]
    states = [h]
    mixing = causal_mean(len(ids))
    for m, n in p["mix"]:
        h = h @ m + (mixing @ h) @ n
        states.append(h)
    last = h @ p["final"][0] + p["final"][1]
    pooled = last[int(np.argmax(ids))]  # the first EOS (the largest id), as CLIP pools
    return dict(hidden_states=states, last_hidden_state=last, pooler_output=pooled,
                text_embeds=pooled @ p["projection"])


def clip_graph(p, with_projection, hidden_states):
    """optimum's clip-text (last_hidden_state, pooler_output) or clip-text-with-projection
    (text_embeds, last_hidden_state) outputs, plus hidden_states.0…n when the pipeline exports
    them (SDXL, SD3)."""
    w, n = p["width"], p["layers"]
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "one_i"], ["length"], axis=0),
        helper.make_node("Unsqueeze", ["length", "zero_axis"], ["length1"]),
        helper.make_node("Slice", ["positions", "zero1", "length1", "zero_axis"], ["pos"]),
        helper.make_node("Concat", ["length1", "length1"], ["length2"], axis=0),
        helper.make_node("Slice", ["causal", "zero2", "length2", "axes01"], ["mixing"]),
        helper.make_node("Gather", ["embedding", "input_ids"], ["tokens"], axis=0),
        helper.make_node("Add", ["tokens", "pos"], ["h0"]),
    ]
    inits = [const("embedding", p["embedding"].astype(np.float32)),
             const("positions", p["positions"].astype(np.float32)),
             const("causal", causal_mean(CONTEXT).astype(np.float32)),
             scalar_i("one_i", 1),
             const("zero_axis", np.array([0], dtype=np.int64)),
             const("zero1", np.array([0], dtype=np.int64)),
             const("zero2", np.array([0, 0], dtype=np.int64)),
             const("axes01", np.array([0, 1], dtype=np.int64))]
    for k, (m, nn) in enumerate(p["mix"], start=1):
        nodes += [helper.make_node("MatMul", [f"h{k-1}", f"m{k}"], [f"own{k}"]),
                  helper.make_node("MatMul", ["mixing", f"h{k-1}"], [f"ctx{k}"]),
                  helper.make_node("MatMul", [f"ctx{k}", f"n{k}"], [f"mixed{k}"]),
                  helper.make_node("Add", [f"own{k}", f"mixed{k}"], [f"h{k}"])]
        inits += [const(f"m{k}", m.astype(np.float32)), const(f"n{k}", nn.astype(np.float32))]
    nodes += [
        helper.make_node("MatMul", [f"h{n}", "final_w"], ["final_mm"]),
        helper.make_node("Add", ["final_mm", "final_b"], ["last"]),
        # the pooled state is the first EOS's (the largest id)
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=f),
        helper.make_node("ArgMax", ["ids_f"], ["eos"], axis=1, keepdims=1),
        helper.make_node("Range", ["zero_s", "length", "one_i"], ["places"]),
        helper.make_node("Equal", ["places", "eos"], ["at_eos"]),
        helper.make_node("Cast", ["at_eos"], ["at_eos_f"], to=f),
        helper.make_node("Unsqueeze", ["at_eos_f", "two_axis"], ["at_eos_3"]),
        helper.make_node("Mul", ["last", "at_eos_3"], ["eos_only"]),
        helper.make_node("ReduceSum", ["eos_only", "one_axis"], ["pooled"], keepdims=0),
    ]
    inits += [const("final_w", p["final"][0].astype(np.float32)),
              const("final_b", p["final"][1].astype(np.float32)),
              scalar_i("zero_s", 0),
              const("one_axis", np.array([1], dtype=np.int64)),
              const("two_axis", np.array([2], dtype=np.int64))]
    outputs = []
    if with_projection:
        nodes.append(helper.make_node("MatMul", ["pooled", "projection"], ["text_embeds"]))
        inits.append(const("projection", p["projection"].astype(np.float32)))
        outputs.append(helper.make_tensor_value_info("text_embeds", f, ["batch_size", w]))
    nodes.append(helper.make_node("Identity", ["last"], ["last_hidden_state"]))
    outputs.append(helper.make_tensor_value_info("last_hidden_state", f,
                                                 ["batch_size", "sequence_length", w]))
    if not with_projection:
        nodes.append(helper.make_node("Identity", ["pooled"], ["pooler_output"]))
        outputs.append(helper.make_tensor_value_info("pooler_output", f, ["batch_size", w]))
    if hidden_states:
        for k in range(n + 1):
            nodes.append(helper.make_node("Identity", [f"h{k}"], [f"hidden_states.{k}"]))
            outputs.append(helper.make_tensor_value_info(
                f"hidden_states.{k}", f, ["batch_size", "sequence_length", w]))
    return helper.make_graph(
        nodes, "text_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                       ["batch_size", "sequence_length"])],
        outputs, inits)


def t5_params(rng, vocab_size):
    scale = 1 / math.sqrt(T5_WIDTH)
    return dict(
        embedding=rng.standard_normal((vocab_size, T5_WIDTH)),
        positions=0.3 * rng.standard_normal((T5_POSITIONS, T5_WIDTH)),
        mix=[(np.eye(T5_WIDTH) + 0.5 * scale * rng.standard_normal((T5_WIDTH, T5_WIDTH)),
              2.0 * scale * rng.standard_normal((T5_WIDTH, T5_WIDTH))) for _ in range(T5_LAYERS)])


def t5_forward(p, ids):
    ids = np.asarray(ids)
    h = p["embedding"][ids] + p["positions"][: len(ids)]
    for m, n in p["mix"]:
        h = h @ m + h.mean(axis=0, keepdims=True) @ n
    return h


def t5_graph(p):
    """optimum's t5-encoder: input_ids → last_hidden_state, any sequence length up to 512."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Slice", ["ids_shape", "one1", "two1"], ["length1"]),
        helper.make_node("Slice", ["positions", "zero1", "length1", "zero1"], ["pos"]),
        helper.make_node("Gather", ["embedding", "input_ids"], ["tokens"], axis=0),
        helper.make_node("Add", ["tokens", "pos"], ["h0"]),
    ]
    inits = [const("embedding", p["embedding"].astype(np.float32)),
             const("positions", p["positions"].astype(np.float32)),
             const("zero1", np.array([0], dtype=np.int64)),
             const("one1", np.array([1], dtype=np.int64)),
             const("two1", np.array([2], dtype=np.int64))]
    for k, (m, n) in enumerate(p["mix"], start=1):
        nodes += [helper.make_node("MatMul", [f"h{k-1}", f"m{k}"], [f"own{k}"]),
                  helper.make_node("ReduceMean", [f"h{k-1}"], [f"mean{k}"], axes=[1], keepdims=1),
                  helper.make_node("MatMul", [f"mean{k}", f"n{k}"], [f"mixed{k}"]),
                  helper.make_node("Add", [f"own{k}", f"mixed{k}"], [f"h{k}"])]
        inits += [const(f"m{k}", m.astype(np.float32)), const(f"n{k}", n.astype(np.float32))]
    nodes.append(helper.make_node("Identity", [f"h{T5_LAYERS}"], ["last_hidden_state"]))
    return helper.make_graph(
        nodes, "text_encoder_t5",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                       ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("last_hidden_state", f,
                                       ["batch_size", "sequence_length", T5_WIDTH])],
        inits)


# ---------------------------------------------------------------- denoisers (ONNX)

def position_weights(length):
    p = np.arange(length, dtype=np.float64)
    return (1 + 0.5 * np.cos(0.7 * p)) / CONTEXT


def weighted_sum_nodes(ehs):
    """m = Σ_p w_p E[:, p, :] with w computed for the input's own sequence length."""
    return [
        helper.make_node("Shape", [ehs], ["ehs_shape"]),
        helper.make_node("Gather", ["ehs_shape", "one_i"], ["seq_len"], axis=0),
        helper.make_node("Range", ["zero_s", "seq_len", "one_i"], ["seq_pos"]),
        helper.make_node("Cast", ["seq_pos"], ["seq_pos_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["seq_pos_f", "freq"], ["phase"]),
        helper.make_node("Cos", ["phase"], ["cosine"]),
        helper.make_node("Mul", ["cosine", "half"], ["half_cos"]),
        helper.make_node("Add", ["half_cos", "one"], ["w_raw"]),
        helper.make_node("Div", ["w_raw", "context"], ["w_flat"]),
        helper.make_node("Reshape", ["w_flat", "shape_1_m1_1"], ["w"]),
        helper.make_node("Mul", [ehs, "w"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "one_axis"], ["m"], keepdims=0),
    ]


def common_inits():
    return [scalar_i("one_i", 1), scalar_i("zero_s", 0),
            const("one_axis", np.array([1], dtype=np.int64)),
            const("shape_1_m1_1", np.array([1, -1, 1], dtype=np.int64)),
            scalar_f("freq", 0.7), scalar_f("half", 0.5), scalar_f("one", 1.0),
            scalar_f("context", float(CONTEXT)), scalar_f("v", VARIANCE)]


def velocity_nodes(x, t, mu, out):
    """v_hat = c (x_t − (1−t) mu) − mu, c = (t − (1−t) v)/((1−t)² v + t²): E[ε − x | x_t]."""
    return [
        helper.make_node("Sub", ["one", t], ["keep"]),
        helper.make_node("Mul", ["keep", "keep"], ["keep2"]),
        helper.make_node("Mul", ["keep2", "v"], ["keep2v"]),
        helper.make_node("Mul", [t, t], ["t2"]),
        helper.make_node("Add", ["keep2v", "t2"], ["denominator"]),
        helper.make_node("Mul", ["keep", "v"], ["keep_v"]),
        helper.make_node("Sub", [t, "keep_v"], ["numerator"]),
        helper.make_node("Div", ["numerator", "denominator"], ["c"]),
        helper.make_node("Mul", ["keep", mu], ["signal"]),
        helper.make_node("Sub", [x, "signal"], ["residual"]),
        helper.make_node("Mul", ["c", "residual"], ["scaled"]),
        helper.make_node("Sub", ["scaled", mu], [out]),
    ]


def sdxl_unet_graph(net, abar, debug=False):
    c = 4
    f = TensorProto.FLOAT
    nodes = weighted_sum_nodes("encoder_hidden_states") + [
        helper.make_node("MatMul", ["m", "a_t"], ["from_states"]),
        helper.make_node("MatMul", ["text_embeds", "p_t"], ["from_pooled"]),
        helper.make_node("Add", ["from_states", "from_pooled"], ["content"]),
        # gate = 1/4 + 2·exp(−(λ − 1)²)·(1 + 0.3·tanh(G·u)), u = time_ids/64, λ = u·u0/‖u0‖²
        helper.make_node("Div", ["time_ids", "time_unit"], ["time_scaled"]),
        helper.make_node("MatMul", ["time_scaled", "size_axis"], ["lam"]),
        helper.make_node("Sub", ["lam", "one"], ["lam_off"]),
        helper.make_node("Mul", ["lam_off", "lam_off"], ["lam_sq"]),
        helper.make_node("Neg", ["lam_sq"], ["lam_neg"]),
        helper.make_node("Exp", ["lam_neg"], ["bump"]),
        helper.make_node("MatMul", ["time_scaled", "g_t"], ["gate_in"]),
        helper.make_node("Tanh", ["gate_in"], ["gate_tanh"]),
        helper.make_node("Mul", ["gate_tanh", "gate_wobble"], ["wobble"]),
        helper.make_node("Add", ["wobble", "one"], ["wobble1"]),
        helper.make_node("Mul", ["wobble1", "bump"], ["bumped"]),
        helper.make_node("Mul", ["bumped", "gate_height"], ["gate_high"]),
        helper.make_node("Add", ["gate_high", "gate_floor"], ["gate"]),
        helper.make_node("Mul", ["gate", "content"], ["gated"]),
        helper.make_node("Add", ["gated", "b0"], ["mu_flat"]),
        helper.make_node("Shape", ["sample"], ["sample_shape"]),
        helper.make_node("Reshape", ["mu_flat", "sample_shape"], ["mu"]),
        # the trained timestep nearest the float it is given, and its ᾱ
        helper.make_node("Round", ["timestep"], ["t_round"]),
        helper.make_node("Cast", ["t_round"], ["t_index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["abar", "t_index"], ["s"], axis=0),
        helper.make_node("Sqrt", ["s"], ["sqrt_s"]),
        helper.make_node("Sub", ["one", "s"], ["one_minus_s"]),
        helper.make_node("Sqrt", ["one_minus_s"], ["sqrt_1ms"]),
        helper.make_node("Mul", ["sqrt_s", "mu"], ["scaled_mu"]),
        helper.make_node("Sub", ["sample", "scaled_mu"], ["residual"]),
        helper.make_node("Mul", ["s", "v"], ["sv"]),
        helper.make_node("Add", ["sv", "one_minus_s"], ["denominator"]),
        helper.make_node("Mul", ["sqrt_1ms", "residual"], ["numerator"]),
        helper.make_node("Div", ["numerator", "denominator"], ["out_sample"]),
    ]
    inits = common_inits() + [
        const("a_t", net["A"].T.astype(np.float32)), const("p_t", net["P"].T.astype(np.float32)),
        const("g_t", net["G"].T.astype(np.float32)), const("b0", net["b0"].astype(np.float32)),
        scalar_f("time_unit", float(PIXELS)), const("abar", abar.astype(np.float32)),
        const("size_axis", (SIZE_AXIS / (SIZE_AXIS @ SIZE_AXIS)).reshape(6, 1).astype(np.float32)),
        scalar_f("gate_wobble", 0.3), scalar_f("gate_height", 2.0), scalar_f("gate_floor", 0.25)]
    outputs = [helper.make_tensor_value_info("out_sample", f, ["batch_size", c, "height", "width"])]
    if debug:
        outputs.append(helper.make_tensor_value_info("mu", f, ["batch_size", c, "height", "width"]))
    return helper.make_graph(
        nodes, "unet",
        [helper.make_tensor_value_info("sample", f, ["batch_size", c, "height", "width"]),
         helper.make_tensor_value_info("timestep", f, []),
         helper.make_tensor_value_info("encoder_hidden_states", f,
                                       ["batch_size", "sequence_length", net["A"].shape[1]]),
         helper.make_tensor_value_info("text_embeds", f, ["batch_size", net["P"].shape[1]]),
         helper.make_tensor_value_info("time_ids", f, ["batch_size", 6])],
        outputs, inits)


def sd3_transformer_graph(net, debug=False):
    c = 16
    f = TensorProto.FLOAT
    nodes = weighted_sum_nodes("encoder_hidden_states") + [
        helper.make_node("MatMul", ["m", "a_t"], ["from_states"]),
        helper.make_node("MatMul", ["pooled_projections", "p_t"], ["from_pooled"]),
        helper.make_node("Add", ["from_states", "from_pooled"], ["content"]),
        helper.make_node("Add", ["content", "b0"], ["mu_flat"]),
        helper.make_node("Shape", ["hidden_states"], ["x_shape"]),
        helper.make_node("Reshape", ["mu_flat", "x_shape"], ["mu"]),
        # the transformer's timestep is 1000·t
        helper.make_node("Mul", ["timestep", "per_mille"], ["t_flat"]),
        helper.make_node("Reshape", ["t_flat", "shape_b111"], ["t"]),
    ] + velocity_nodes("hidden_states", "t", "mu", "out_hidden_states")
    inits = common_inits() + [
        const("a_t", net["A"].T.astype(np.float32)), const("p_t", net["P"].T.astype(np.float32)),
        const("b0", net["b0"].astype(np.float32)), scalar_f("per_mille", 0.001),
        const("shape_b111", np.array([-1, 1, 1, 1], dtype=np.int64))]
    outputs = [helper.make_tensor_value_info("out_hidden_states", f,
                                             ["batch_size", c, "height", "width"])]
    if debug:
        outputs.append(helper.make_tensor_value_info("mu", f, ["batch_size", c, "height", "width"]))
    return helper.make_graph(
        nodes, "transformer",
        [helper.make_tensor_value_info("hidden_states", f, ["batch_size", c, "height", "width"]),
         helper.make_tensor_value_info("encoder_hidden_states", f,
                                       ["batch_size", "sequence_length", T5_WIDTH]),
         helper.make_tensor_value_info("pooled_projections", f,
                                       ["batch_size", net["P"].shape[1]]),
         helper.make_tensor_value_info("timestep", f, ["step"])],
        outputs, inits)


def pack(latent):
    """diffusers' _pack_latents of one item: [C, h, w] → [(h/2)(w/2), 4C], feature c·4 + 2·dy + dx."""
    c, h, w = latent.shape[:3]
    rest = latent.shape[3:]
    x = latent.reshape(c, h // 2, 2, w // 2, 2, *rest)
    x = np.moveaxis(x, [1, 3], [0, 1])  # (h/2, w/2, c, 2, 2, ...)
    return x.reshape((h // 2) * (w // 2), 4 * c, *rest)


def unpack(tokens, c, h, w):
    """The inverse of pack (diffusers' _unpack_latents of one item)."""
    rest = tokens.shape[2:]
    x = tokens.reshape(h // 2, w // 2, c, 2, 2, *rest)
    x = np.moveaxis(x, [0, 1], [1, 3])
    return x.reshape(c, h, w, *rest)


def image_ids(h, w):
    """diffusers' _prepare_latent_image_ids(h/2, w/2): (0, row, col) per packed token."""
    rows, cols = np.meshgrid(np.arange(h // 2), np.arange(w // 2), indexing="ij")
    return np.stack([np.zeros_like(rows), rows, cols], axis=-1).reshape(-1, 3)


def flux_transformer_graph(net, debug=False):
    """Per packed token, the network reads its mean's rows at the place its img_ids name."""
    f = TensorProto.FLOAT
    c, h, w = 16, SIDE, SIDE
    features = 4 * c
    b0_table = pack(net["b0"].reshape(c, h, w))
    a_table = pack(net["A"].reshape(c, h, w, -1))
    p_table = pack(net["P"].reshape(c, h, w, -1))
    nodes = weighted_sum_nodes("encoder_hidden_states") + [
        helper.make_node("Gather", ["img_ids", "one_i"], ["rows"], axis=1),
        helper.make_node("Gather", ["img_ids", "two_i"], ["cols"], axis=1),
        helper.make_node("Mul", ["rows", "half_width"], ["row_start"]),
        helper.make_node("Add", ["row_start", "cols"], ["place"]),
        helper.make_node("Gather", ["b0_table", "place"], ["b0_tokens"], axis=0),
        helper.make_node("Gather", ["a_table", "place"], ["a_tokens"], axis=0),
        helper.make_node("Gather", ["p_table", "place"], ["p_tokens"], axis=0),
        helper.make_node("Einsum", ["a_tokens", "m"], ["from_states"], equation="nfk,bk->bnf"),
        helper.make_node("Einsum", ["p_tokens", "pooled_projections"], ["from_pooled"],
                         equation="nfk,bk->bnf"),
        helper.make_node("Add", ["from_states", "from_pooled"], ["content"]),
        # txt_ids are zeros in diffusers; anything else scales the prompt's part
        helper.make_node("Cast", ["txt_ids"], ["txt_f"], to=f),
        helper.make_node("ReduceSum", ["txt_f"], ["txt_sum"], keepdims=0),
        helper.make_node("Mul", ["txt_sum", "tenth"], ["txt_tenth"]),
        helper.make_node("Add", ["txt_tenth", "one"], ["txt_gate"]),
        helper.make_node("Reshape", ["guidance", "shape_b11"], ["g"]),
        helper.make_node("Mul", ["g", "txt_gate"], ["scale"]),
        helper.make_node("Mul", ["content", "scale"], ["guided"]),
        helper.make_node("Add", ["guided", "b0_tokens"], ["mu"]),
        helper.make_node("Reshape", ["timestep", "shape_b11"], ["t"]),
    ] + velocity_nodes("hidden_states", "t", "mu", "out_hidden_states")
    inits = common_inits() + [
        scalar_i("two_i", 2),
        scalar_i("half_width", w // 2),
        const("b0_table", b0_table.astype(np.float32)), const("a_table", a_table.astype(np.float32)),
        const("p_table", p_table.astype(np.float32)), scalar_f("tenth", 0.1),
        const("shape_b11", np.array([-1, 1, 1], dtype=np.int64))]
    outputs = [helper.make_tensor_value_info("out_hidden_states", f,
                                             ["batch_size", "packed_height_width", features])]
    if debug:
        outputs.append(helper.make_tensor_value_info("mu", f,
                                                     ["batch_size", "packed_height_width", features]))
    return helper.make_graph(
        nodes, "transformer",
        [helper.make_tensor_value_info("hidden_states", f,
                                       ["batch_size", "packed_height_width", features]),
         helper.make_tensor_value_info("encoder_hidden_states", f,
                                       ["batch_size", "sequence_length", T5_WIDTH]),
         helper.make_tensor_value_info("pooled_projections", f,
                                       ["batch_size", net["P"].shape[1]]),
         helper.make_tensor_value_info("timestep", f, ["step"]),
         helper.make_tensor_value_info("txt_ids", TensorProto.INT64, ["sequence_length", 3]),
         helper.make_tensor_value_info("img_ids", TensorProto.INT64, ["packed_height_width", 3]),
         helper.make_tensor_value_info("guidance", f, ["batch_size"])],
        outputs, inits)


# ---------------------------------------------------------------- families

def ablations(prompt):
    words = prompt.split()
    return [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]


def without(prompt, *removed):
    return " ".join(w for w in prompt.split() if w not in removed)


def truth_prompts():
    """The prompts whose mean truth.json stores: the null prompt, the full prompts, every one-word
    removal, and the prompts of MAIN's PID of PID_WORDS (plain and conditional)."""
    a, b = PID_WORDS
    prompts = ["", *FULL_PROMPTS]
    for prompt in FULL_PROMPTS:
        prompts += ablations(prompt)
    prompts += [a, b, f"{a} {b}", without(MAIN, a), without(MAIN, b), without(MAIN, a, b)]
    return list(dict.fromkeys(prompts))


def session(graph):
    """An onnxruntime session of a graph (the build's own checks run every graph)."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def stacked(conds, key):
    """One conditioning input of a batch, as the network takes it (float32)."""
    return np.stack([c[key] for c in conds]).astype(np.float32)


def check_close(name, got, want, rtol=2e-5):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    error = float(np.abs(got - want).max())
    assert error <= rtol * scale, f"{name}: max error {error:.3g} (scale {scale:.3g})"


class Family:
    """One family's fixture: encoders, the exact network, and its backend as the pipeline runs it
    (with switches for the wrong conventions of the sensitivity table)."""

    name = None
    channels = 16
    prediction = "flow velocity v = ε − x"

    def __init__(self, seed, clip):
        self.rng = np.random.default_rng(seed)
        self.clip = clip
        self.shape = (self.channels, SIDE, SIDE)
        self.d = int(np.prod(self.shape))
        self.folder = os.path.join(OUT, self.name)
        self.sessions = {}

    # ---- the VAE: 8×8 pooling, a fixed 1×1 conv; latent = (mean − shift)·scaling
    def make_vae(self):
        self.conv_w = 0.5 * self.rng.standard_normal((self.channels, 3))
        self.conv_b = 0.1 * self.rng.standard_normal(self.channels)
        pixels = to_model_pixels(test_image(PIXELS))
        pooled = pixels.reshape(3, SIDE, 8, SIDE, 8).mean(axis=(2, 4))
        self.vae_mean = np.einsum("oc,chw->ohw", self.conv_w, pooled) + self.conv_b[:, None, None]
        self.x = ((self.vae_mean - (self.shift or 0.0)) * self.scaling).reshape(-1)

    def write_vae(self):
        for part, graph in (
                ("vae_encoder", vae_encoder_graph(self.conv_w, self.conv_b, "latent_parameters", False,
                                                  PIXELS, dynamic=True, latent_channels=self.channels)),
                ("vae_decoder", vae_decoder_graph(False, PIXELS, self.channels, dynamic=True))):
            save(graph, os.path.join(self.folder, part, "model.onnx"))
            write_json(os.path.join(self.folder, part, "config.json"), {
                "_class_name": "AutoencoderKL", "_diffusers_version": "0.36.0",
                "block_out_channels": [8, 8, 8, 8], "in_channels": 3, "out_channels": 3,
                "latent_channels": self.channels, "sample_size": PIXELS,
                "scaling_factor": self.scaling, "shift_factor": self.shift,
                "down_block_types": ["DownEncoderBlock2D"] * 4,
                "up_block_types": ["UpDecoderBlock2D"] * 4,
                "use_quant_conv": self.shift is None, "use_post_quant_conv": self.shift is None})

    # ---- encoders, run through onnxruntime (and checked against numpy)
    def encoder(self, folder, graph):
        if folder not in self.sessions:
            self.sessions[folder] = session(graph)
        return self.sessions[folder]

    def clip_outputs(self, key, params, graph, ids):
        out = self.encoder(key, graph).run(None, {"input_ids": np.array([ids], dtype=np.int64)})
        names = [o.name for o in self.sessions[key].get_outputs()]
        result = {n: v[0] for n, v in zip(names, out)}
        reference = clip_forward(params, ids)
        check_close(f"{key} last_hidden_state", result["last_hidden_state"],
                    reference["last_hidden_state"])
        for k in range(params["layers"] + 1):
            if f"hidden_states.{k}" in result:
                check_close(f"{key} hidden_states.{k}", result[f"hidden_states.{k}"],
                            reference["hidden_states"][k])
        if "text_embeds" in result:
            check_close(f"{key} text_embeds", result["text_embeds"], reference["text_embeds"])
        if "pooler_output" in result:
            check_close(f"{key} pooler_output", result["pooler_output"], reference["pooler_output"])
        return result

    def t5_outputs(self, ids):
        result = self.encoder("t5", t5_graph(self.t5)).run(
            None, {"input_ids": np.array([ids], dtype=np.int64)})[0][0]
        check_close("t5 last_hidden_state", result, t5_forward(self.t5, ids))
        return result

    # ---- the network's mean for a condition: numpy (float64) and the graph's own (float32)
    def denoiser_session(self, debug=True):
        key = "denoiser-debug" if debug else "denoiser"
        if key not in self.sessions:
            self.sessions[key] = session(self.denoiser_graph(debug))
        return self.sessions[key]

    def scale_network(self, conditions_main, conditions_null):
        """Scales the prompt's part of the mean so that ‖mu_main − mu_null‖²/(2v) is the target,
        each conditioning input contributing half, and centres b0 on the image (so the test image
        is typical for the main prompt)."""
        gain_a = np.linalg.norm(self.net["A"] @ (self.m(conditions_main) - self.m(conditions_null)))
        gain_p = np.linalg.norm(self.net["P"] @ (self.pooled(conditions_main) - self.pooled(conditions_null)))
        self.net["A"] /= gain_a
        self.net["P"] /= gain_p
        self.net["b0"] = np.zeros(self.d)
        gap = self.mean(conditions_main) - self.mean(conditions_null)
        factor = math.sqrt(2 * VARIANCE * TARGET_FULL_INFORMATION / (gap @ gap))
        self.net["A"] *= factor
        self.net["P"] *= factor
        self.net["b0"] = (self.x - self.mean(conditions_main)
                          + math.sqrt(VARIANCE) * 0.3 * self.rng.standard_normal(self.d))

    def m(self, cond):
        ehs = cond["encoder_hidden_states"]
        return position_weights(len(ehs)) @ ehs

    def graph_mean(self, cond):
        """mu as the graph computes it (float32), flattened CHW."""
        feeds = self.feeds([cond], np.zeros((1, *self.shape)), np.array([0.5]), debug=True)
        out = self.denoiser_session(debug=True).run(["mu"], feeds)[0][0]
        mu = self.unpack_out(out)
        check_close(f"{self.name} mu", mu, self.mean(cond), rtol=1e-5)
        return mu

    def unpack_out(self, out):
        return np.asarray(out, dtype=np.float64).reshape(-1)

    # ---- the backend, as the pipeline runs it: eps_hat at VP log-SNR alpha for noisy z (CHW)
    def eps_hat(self, conds, z, alpha, wrong=None):
        raise NotImplementedError

    def write_common(self):
        shutil.rmtree(self.folder, ignore_errors=True)
        os.makedirs(self.folder)


class FlowFamily(Family):
    """SD3 and FLUX: a rectified flow in VP coordinates (F1 of the plan: t = σ(−α/2), x_t = s·x_α,
    eps_hat = x_t + (1 − t)·v_hat)."""

    def eps_hat(self, conds, z, alpha, wrong=None):
        wrong = wrong or set()
        t = sigmoid(-alpha / 2)
        s = np.sqrt((1 - t) ** 2 + t ** 2)
        xt = np.asarray(z).reshape(len(conds), -1) * s[:, None]
        feeds = self.feeds(conds, xt, t, wrong=wrong)
        out = self.denoiser_session(debug=False).run(None, feeds)[0]
        v = self.unpack_batch(out, wrong).reshape(len(conds), -1)
        if "velocity-as-noise" in wrong:
            return v
        return xt + (1 - t)[:, None] * v

    def unpack_batch(self, out, wrong):
        return np.asarray(out, dtype=np.float64)

    def log_snr_range(self):
        """flow.ts's flowLogSnrRange: the central 99.8 % of the training law in α, N(−2 log shift,
        2²) for logit-normal(0, 1), within the grid t ∈ [shift(1/N), shift(1 − 1/N)], α = 2 log((1 − t)/t)."""
        shift = self.time_shift()
        n = 1000

        def shifted(t):
            return shift * t / (1 + (shift - 1) * t)

        t_min, t_max = shifted(1 / n), shifted(1 - 1 / n)
        grid = 2 * math.log((1 - t_max) / t_max), 2 * math.log((1 - t_min) / t_min)
        centre, reach = -2 * math.log(shift), 2 * TRAINED_LAW_DEVIATIONS
        return max(grid[0], centre - reach), min(grid[1], centre + reach)

    def coefficients(self, alpha, wrong):
        """eps_hat = a·z + b·mu' of the backend at alpha (the exact network's velocity, read with
        the time the backend feeds and converted as the backend converts)."""
        t = sigmoid(-alpha / 2)
        s = np.sqrt((1 - t) ** 2 + t ** 2)
        tn = self.network_time(t, wrong)
        c = (tn - (1 - tn) * VARIANCE) / ((1 - tn) ** 2 * VARIANCE + tn ** 2)
        # v_hat = c (s z − (1 − tn) mu) − mu
        if "velocity-as-noise" in wrong:
            return c * s, -(c * (1 - tn) + 1)
        return s * (1 + (1 - t) * c), -(1 - t) * (c * (1 - tn) + 1)

    def network_time(self, t, wrong):
        return t

    def integrate(self, f):
        """½∫ f(α) dα over the range (composite Simpson; f is smooth in α)."""
        lo, hi = self.log_snr_range()
        n = 40_000
        alpha = np.linspace(lo, hi, n + 1)
        weights = np.ones(n + 1)
        weights[1:-1:2], weights[2:-1:2] = 4, 2
        return 0.5 * (hi - lo) / (3 * n) * float(weights @ f(alpha))

    def draw_alpha(self, rng, n):
        lo, hi = self.log_snr_range()
        return rng.uniform(lo, hi, n), hi - lo

    def noise_level(self, alpha):
        return alpha


class Sdxl(Family):
    name = "exact-sdxl"
    channels = 4
    prediction = "epsilon"
    scaling, shift = 0.13025, None
    time_ids = [PIXELS, PIXELS, 0, 0, PIXELS, PIXELS]

    def build(self):
        self.make_vae()
        vocab = len(self.clip.vocab)
        self.clip_l = clip_params(self.rng, vocab, **CLIP_L)
        self.clip_g = clip_params(self.rng, vocab, **CLIP_G)
        self.graph_l = clip_graph(self.clip_l, with_projection=False, hidden_states=True)
        self.graph_g = clip_graph(self.clip_g, with_projection=True, hidden_states=True)
        config = dict(_class_name="EulerDiscreteScheduler", _diffusers_version="0.36.0",
                      beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085,
                      clip_sample=False, interpolation_type="linear", num_train_timesteps=1000,
                      prediction_type="epsilon", sample_max_value=1.0, set_alpha_to_one=False,
                      skip_prk_steps=True, steps_offset=1, timestep_spacing="leading",
                      trained_betas=None, use_karras_sigmas=False)
        self.scheduler = config
        self.abar = np.cumprod(1.0 - betas_for(config))
        width = CLIP_L["width"] + CLIP_G["width"]
        self.net = dict(A=self.rng.standard_normal((self.d, width)),
                        P=self.rng.standard_normal((self.d, CLIP_G["width"])),
                        G=0.5 * self.rng.standard_normal((self.d, 6)))
        main, null = self.condition(MAIN), self.condition("")
        self.scale_network(main, null)

    # conditions: {encoder_hidden_states [77, 20], text_embeds [12], time_ids [6]}
    def condition(self, prompt, wrong=None):
        wrong = wrong or set()
        if prompt == "" and "empty-prompt-encoded" not in wrong:
            # force_zeros_for_empty_prompt: the unconditional embeddings are zeros
            return dict(encoder_hidden_states=np.zeros((CONTEXT, CLIP_L["width"] + CLIP_G["width"])),
                        text_embeds=np.zeros(CLIP_G["width"]), time_ids=self.time_ids_for(wrong))
        ids_l = self.clip.ids(prompt, "<|endoftext|>")
        ids_g = self.clip.ids(prompt, "!")
        out_l = self.clip_outputs("text_encoder", self.clip_l, self.graph_l, ids_l)
        out_g = self.clip_outputs("text_encoder_2", self.clip_g, self.graph_g, ids_g)
        if "last-layer" in wrong:
            states = [out_l["last_hidden_state"], out_g["last_hidden_state"]]
        else:
            states = [out_l[f"hidden_states.{CLIP_L['layers'] - 1}"],
                      out_g[f"hidden_states.{CLIP_G['layers'] - 1}"]]
        return dict(encoder_hidden_states=np.concatenate(states, axis=-1),
                    text_embeds=out_g["text_embeds"], time_ids=self.time_ids_for(wrong),
                    input_ids=dict(text_encoder=ids_l, text_encoder_2=ids_g))

    def time_ids_for(self, wrong):
        if "time-ids-latent" in wrong:
            return np.array([SIDE, SIDE, 0, 0, SIDE, SIDE], dtype=np.float64)
        if "time-ids-1024" in wrong:
            return np.array([1024, 1024, 0, 0, 1024, 1024], dtype=np.float64)
        return np.array(self.time_ids, dtype=np.float64)

    def pooled(self, cond):
        return cond["text_embeds"]

    def gate(self, cond):
        u = cond["time_ids"] / PIXELS
        size = u @ SIZE_AXIS / (SIZE_AXIS @ SIZE_AXIS)
        return 0.25 + 2 * np.exp(-(size - 1) ** 2) * (1 + 0.3 * np.tanh(self.net["G"] @ u))

    def mean(self, cond):
        content = self.net["A"] @ self.m(cond) + self.net["P"] @ cond["text_embeds"]
        return self.net["b0"] + self.gate(cond) * content

    def denoiser_graph(self, debug):
        return sdxl_unet_graph(self.net, self.abar, debug)

    def feeds(self, conds, z, t_or_alpha, debug=False, wrong=None):
        timestep = 0.0 if debug else self.nearest_timestep(float(t_or_alpha[0]))
        return {"sample": np.asarray(z, dtype=np.float32).reshape(len(conds), *self.shape),
                "timestep": np.array(timestep, dtype=np.float32),
                "encoder_hidden_states": stacked(conds, "encoder_hidden_states"),
                "text_embeds": stacked(conds, "text_embeds"),
                "time_ids": stacked(conds, "time_ids")}

    # ---- the DDPM schedule: α of each trained timestep, snapped as schedule.ts snaps
    def alphas(self):
        return np.log(self.abar) - np.log1p(-self.abar)

    def nearest_timestep(self, alpha):
        return int(np.argmin(np.abs(self.alphas() - alpha)))

    def log_snr_range(self):
        table = self.alphas()
        return float(table[-1]), float(table[0])

    def eps_hat(self, conds, z, alpha, wrong=None):
        # a scalar timestep: one α per call (the estimators share it across the batch)
        assert np.all(alpha == alpha[0])
        feeds = self.feeds(conds, z, alpha)
        return np.asarray(self.denoiser_session(debug=False).run(None, feeds)[0], dtype=np.float64)

    def coefficients(self, alpha, wrong):
        s = sigmoid(alpha)
        denominator = s * VARIANCE + 1 - s
        return np.sqrt(1 - s) / denominator, -np.sqrt(s * (1 - s)) / denominator

    def integrate(self, f):
        """½∫ f(snap(α)) dα: each trained α weighs the width of the α it is nearest to."""
        table = self.alphas()
        edges = np.concatenate([[table[0]], (table[:-1] + table[1:]) / 2, [table[-1]]])
        widths = edges[:-1] - edges[1:]
        return 0.5 * float(widths @ f(table))

    def draw_alpha(self, rng, n):
        lo, hi = self.log_snr_range()
        return rng.uniform(lo, hi, n), hi - lo

    def noise_level(self, alpha):
        return self.alphas()[self.nearest_timestep(alpha)]


class Sd3(FlowFamily):
    name = "exact-sd3"
    # SD3's scaling factor; the shift is larger than SD3's 0.0609 so that a missing shift moves the
    # log-likelihood of these 1,024 latent values as far as SD3's own moves its 262,144
    scaling, shift = 1.5305, 0.5
    t5_length = 256

    def build(self):
        self.make_vae()
        vocab = len(self.clip.vocab)
        self.clip_l = clip_params(self.rng, vocab, **CLIP_L)
        self.clip_g = clip_params(self.rng, vocab, **CLIP_G)
        self.t5 = t5_params(self.rng, len(self.t5_tokenizer))
        self.graph_l = clip_graph(self.clip_l, with_projection=True, hidden_states=True)
        self.graph_g = clip_graph(self.clip_g, with_projection=True, hidden_states=True)
        self.scheduler = dict(_class_name="FlowMatchEulerDiscreteScheduler",
                              _diffusers_version="0.36.0", num_train_timesteps=1000, shift=3.0)
        pooled = CLIP_L["width"] + CLIP_G["width"]
        self.net = dict(A=self.rng.standard_normal((self.d, T5_WIDTH)),
                        P=self.rng.standard_normal((self.d, pooled)))
        self.scale_network(self.condition(MAIN), self.condition(""))

    def time_shift(self):
        return self.scheduler["shift"]

    def network_time(self, t, wrong):
        return t / 1000 if "time-unit" in wrong else t

    # conditions: {encoder_hidden_states [77 + 256, 32], pooled_projections [20]}
    def condition(self, prompt, wrong=None):
        wrong = wrong or set()
        ids_l = self.clip.ids(prompt, "<|endoftext|>")
        ids_g = self.clip.ids(prompt, "!")
        ids_t5 = t5_ids(self.t5_tokenizer, prompt, self.t5_length)
        out_l = self.clip_outputs("text_encoder", self.clip_l, self.graph_l, ids_l)
        out_g = self.clip_outputs("text_encoder_2", self.clip_g, self.graph_g, ids_g)
        if "last-layer" in wrong:
            states = [out_l["last_hidden_state"], out_g["last_hidden_state"]]
        else:
            states = [out_l[f"hidden_states.{CLIP_L['layers'] - 1}"],
                      out_g[f"hidden_states.{CLIP_G['layers'] - 1}"]]
        clip = np.concatenate(states, axis=-1)
        clip = np.pad(clip, ((0, 0), (0, T5_WIDTH - clip.shape[1])))
        t5 = self.t5_outputs(ids_t5)
        return dict(encoder_hidden_states=np.concatenate([clip, t5], axis=0),
                    pooled_projections=np.concatenate([out_l["text_embeds"], out_g["text_embeds"]]),
                    input_ids=dict(text_encoder=ids_l, text_encoder_2=ids_g, text_encoder_3=ids_t5))

    def pooled(self, cond):
        return cond["pooled_projections"]

    def mean(self, cond):
        return self.net["b0"] + self.net["A"] @ self.m(cond) + self.net["P"] @ self.pooled(cond)

    def denoiser_graph(self, debug):
        return sd3_transformer_graph(self.net, debug)

    def feeds(self, conds, xt, t, debug=False, wrong=None):
        wrong = wrong or set()
        timestep = np.asarray(t, dtype=np.float64) * (1 if "time-unit" in wrong else 1000)
        return {"hidden_states": np.asarray(xt, dtype=np.float32).reshape(len(conds), *self.shape),
                "encoder_hidden_states": stacked(conds, "encoder_hidden_states"),
                "pooled_projections": stacked(conds, "pooled_projections"),
                "timestep": timestep.astype(np.float32)}


class Flux(FlowFamily):
    name = "exact-flux"
    # FLUX.1's scaling factor; the shift is larger than its 0.1159 for the reason given at Sd3
    scaling, shift = 0.3611, 1.5
    t5_length = 512
    guidance = 1.0

    def build(self):
        self.make_vae()
        self.clip_l = clip_params(self.rng, len(self.clip.vocab), **CLIP_L)
        self.t5 = t5_params(self.rng, len(self.t5_tokenizer))
        self.graph_l = clip_graph(self.clip_l, with_projection=False, hidden_states=False)
        self.scheduler = dict(_class_name="FlowMatchEulerDiscreteScheduler",
                              _diffusers_version="0.36.0", base_image_seq_len=256, base_shift=0.5,
                              max_image_seq_len=4096, max_shift=1.15, num_train_timesteps=1000,
                              shift=3.0, use_dynamic_shifting=True)
        self.net = dict(A=self.rng.standard_normal((self.d, T5_WIDTH)),
                        P=self.rng.standard_normal((self.d, CLIP_L["width"])))
        self.scale_network(self.condition(MAIN), self.condition(""))

    def image_tokens(self):
        return (SIDE // 2) ** 2

    def time_shift(self):
        """FLUX's resolution-dependent shift e^μ, μ = calculate_shift(packed tokens)."""
        s = self.scheduler
        slope = (s["max_shift"] - s["base_shift"]) / (s["max_image_seq_len"] - s["base_image_seq_len"])
        mu = self.image_tokens() * slope + s["base_shift"] - slope * s["base_image_seq_len"]
        return math.exp(mu)

    def network_time(self, t, wrong):
        return 1000 * t if "time-unit" in wrong else t

    # conditions: {encoder_hidden_states [512, 32], pooled_projections [8], txt_ids, img_ids, guidance}
    def condition(self, prompt, wrong=None):
        wrong = wrong or set()
        ids_l = self.clip.ids(prompt, "<|endoftext|>")
        ids_t5 = t5_ids(self.t5_tokenizer, prompt, self.t5_length)
        out_l = self.clip_outputs("text_encoder", self.clip_l, self.graph_l, ids_l)
        return dict(encoder_hidden_states=self.t5_outputs(ids_t5),
                    pooled_projections=out_l["pooler_output"],
                    guidance=3.5 if "guidance-3.5" in wrong else self.guidance,
                    input_ids=dict(text_encoder=ids_l, text_encoder_2=ids_t5))

    def pooled(self, cond):
        return cond["pooled_projections"]

    def mean(self, cond, img_ids=None):
        """mu (CHW) for ids as diffusers builds them; other ids read other places."""
        ids = image_ids(SIDE, SIDE) if img_ids is None else img_ids
        place = ids[:, 1] * (SIDE // 2) + ids[:, 2]
        c, h, w = self.shape
        content = self.net["A"] @ self.m(cond) + self.net["P"] @ self.pooled(cond)
        mu_tokens = pack((self.net["b0"] + cond.get("guidance", 1.0) * content).reshape(c, h, w))
        return unpack(mu_tokens[place], c, h, w).reshape(-1)

    def denoiser_graph(self, debug):
        return flux_transformer_graph(self.net, debug)

    def pack_batch(self, z, wrong):
        c, h, w = self.shape
        z = np.asarray(z).reshape(-1, c, h, w)
        if "packing" in wrong:  # features ordered (dy, dx, c) instead of (c, dy, dx)
            return np.stack([pack(item).reshape(-1, c, 4).transpose(0, 2, 1).reshape(-1, 4 * c)
                             for item in z])
        return np.stack([pack(item) for item in z])

    def unpack_batch(self, out, wrong):
        c, h, w = self.shape
        out = np.asarray(out, dtype=np.float64)
        if "packing" in wrong:
            out = out.reshape(out.shape[0], -1, 4, c).transpose(0, 1, 3, 2).reshape(out.shape[0], -1, 4 * c)
        return np.stack([unpack(tokens, c, h, w) for tokens in out])

    def unpack_out(self, out):
        return unpack(np.asarray(out, dtype=np.float64), *self.shape).reshape(-1)

    def ids_for(self, wrong):
        ids = image_ids(SIDE, SIDE)
        if "ids-swapped" in wrong:  # (0, col, row)
            ids = ids[:, [0, 2, 1]]
        return ids

    def feeds(self, conds, xt, t, debug=False, wrong=None):
        wrong = wrong or set()
        timestep = np.asarray(t, dtype=np.float64) * (1000 if "time-unit" in wrong else 1)
        length = conds[0]["encoder_hidden_states"].shape[0]
        return {"hidden_states": self.pack_batch(xt, wrong).astype(np.float32),
                "encoder_hidden_states": stacked(conds, "encoder_hidden_states"),
                "pooled_projections": stacked(conds, "pooled_projections"),
                "timestep": timestep.astype(np.float32),
                "txt_ids": np.zeros((length, 3), dtype=np.int64),
                "img_ids": self.ids_for(wrong).astype(np.int64),
                "guidance": np.array([c["guidance"] for c in conds], dtype=np.float32)}


# ---------------------------------------------------------------- closed forms

def kernels(fam, wrong=frozenset()):
    """With eps_hat = a·z + b·mu and z = √S x + √(1−S) ε (S = σ(α)), each estimator's expectation
    is a quadratic form in x and mu whose coefficients are ½∫ over α of:
    aa = a²S, ab = a·b·√S, bb = b², zero = (1 − a√(1−S))² − S (per dimension)."""

    def part(name):
        def f(alpha):
            a, b = fam.coefficients(alpha, wrong)
            s = sigmoid(alpha)
            return {"aa": a * a * s, "ab": a * b * np.sqrt(s), "bb": b * b,
                    "zero": (1 - a * np.sqrt(1 - s)) ** 2 - s}[name]
        return fam.integrate(f)

    return {name: part(name) for name in ("aa", "ab", "bb", "zero")}


def closed_form(quantity, k, x, mu_y, mu_c=None, d=None):
    """What the estimator converges to: orthogonal/standard information of y against c, or −log p(x|y)."""
    if quantity == "orthogonal":
        return k["bb"] * float((mu_y - mu_c) @ (mu_y - mu_c))
    if quantity == "map":  # the orthogonal per-pixel map: channels summed, [h·w]
        return k["bb"] * ((mu_y - mu_c) ** 2).reshape(-1, SIDE * SIDE).sum(axis=0)
    if quantity == "standard":
        return 2 * k["ab"] * float(x @ (mu_c - mu_y)) + k["bb"] * float(mu_c @ mu_c - mu_y @ mu_y)
    if quantity == "nll":
        return (0.5 * d * LOG2PIE + d * k["zero"] + k["aa"] * float(x @ x)
                + 2 * k["ab"] * float(x @ mu_y) + k["bb"] * float(mu_y @ mu_y))
    raise ValueError(quantity)


def monte_carlo(fam, quantity, x, conds, wrong, draws, seed):
    """The estimator run through the backend (onnxruntime), α uniform over the range (weight: its
    width), common ε for the conditions compared: mean and standard error."""
    rng = np.random.default_rng(seed)
    alphas, span = fam.draw_alpha(rng, draws)
    values = []
    chunk = 1 if isinstance(fam, Sdxl) else 64
    for start in range(0, draws, chunk):
        alpha = np.array([fam.noise_level(a) for a in alphas[start:start + chunk]])
        eps = rng.standard_normal((len(alpha), fam.d))
        s = sigmoid(alpha)[:, None]
        z = np.sqrt(s) * x + np.sqrt(1 - s) * eps
        items = len(conds)
        out = fam.eps_hat([c for _ in alpha for c in conds], np.repeat(z, items, axis=0),
                          np.repeat(alpha, items), wrong).reshape(len(alpha), items, fam.d)
        if quantity == "orthogonal":
            f = ((out[:, 0] - out[:, 1]) ** 2).sum(axis=1)
        elif quantity == "map":
            f = ((out[:, 0] - out[:, 1]) ** 2).reshape(len(alpha), -1, SIDE * SIDE).sum(axis=1)
        elif quantity == "standard":
            f = ((eps - out[:, 1]) ** 2).sum(axis=1) - ((eps - out[:, 0]) ** 2).sum(axis=1)
        else:
            f = ((eps - out[:, 0]) ** 2).sum(axis=1) - fam.d * s[:, 0]
        if f.ndim == 1:
            f = f[:, None]
        values.append(0.5 * span * f + (0.5 * fam.d * LOG2PIE if quantity == "nll" else 0.0))
    values = np.concatenate(values)
    mean, se = values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(len(values))
    return (mean, se) if quantity == "map" else (float(mean[0]), float(se[0]))


def check_pointwise(fam, conds, mus):
    """The backend's eps_hat equals a·z + b·mu at a few α (the network is the exact denoiser)."""
    rng = np.random.default_rng(7)
    lo, hi = fam.log_snr_range()
    for alpha in np.linspace(lo + 0.5, hi - 0.5, 7):
        alpha = fam.noise_level(alpha)
        z = rng.standard_normal((len(conds), fam.d))
        got = fam.eps_hat(conds, z, np.full(len(conds), alpha)).reshape(len(conds), -1)
        a, b = fam.coefficients(np.array(alpha), frozenset())
        want = a * z + b * np.stack(mus)
        check_close(f"{fam.name} eps_hat at α {alpha:.2f}", got, want, rtol=2e-5)


# ---------------------------------------------------------------- sensitivity table

# (id, what the backend does wrong, quantity, families)
WRONG_CONVENTIONS = [
    ("last-layer", "last_hidden_state of each CLIP instead of its penultimate hidden_states.{n-1}",
     "orthogonal", ("exact-sdxl", "exact-sd3")),
    ("empty-prompt-encoded", '"" encoded as the unconditional instead of zeros '
     "(force_zeros_for_empty_prompt)", "orthogonal", ("exact-sdxl",)),
    ("time-ids-latent", "time_ids in latent units (8, 8, 0, 0, 8, 8) instead of pixels",
     "orthogonal", ("exact-sdxl",)),
    ("time-ids-1024", "time_ids of SDXL's default size (1024, 1024, 0, 0, 1024, 1024) instead of "
     "the image's", "orthogonal", ("exact-sdxl",)),
    ("time-unit", "timestep in the other unit (SD3: t instead of 1000·t; FLUX: 1000·t instead of t)",
     "orthogonal", ("exact-sd3", "exact-flux")),
    ("velocity-as-noise", "the velocity taken as the noise prediction (no ε̂ = x_t + (1−t)·v̂)",
     "orthogonal", ("exact-sd3", "exact-flux")),
    ("guidance-3.5", "guidance 3.5 (the pipeline's default) instead of the stated 1.0", "orthogonal",
     ("exact-flux",)),
    ("vae-shift", "latent = mean·scaling, the VAE's shift_factor left out", "nll",
     ("exact-sd3", "exact-flux")),
    # a permutation of the latent leaves the image-level informations as they are: it shows in the
    # pixel map, exactly (the orthogonal map of the exact denoiser is K̂·Σ_c Δmu², noise-free)
    ("packing", "2×2 packing with features (dy, dx, c) instead of _pack_latents' (c, dy, dx)", "map",
     ("exact-flux",)),
    ("ids-swapped", "img_ids (0, col, row) instead of (0, row, col)", "map", ("exact-flux",)),
]
SENSITIVITY_DRAWS = 4000


def data_for(fam, wrong):
    if "vae-shift" in wrong:
        return (fam.vae_mean * fam.scaling).reshape(-1)
    return fam.x


def means_for(fam, wrong, conds):
    if "packing" in wrong:
        c, h, w = fam.shape

        def moved(mu):  # the network's mean, read back through the wrong unpacking
            tokens = pack(mu.reshape(c, h, w)).reshape(-1, 4, c).transpose(0, 2, 1).reshape(-1, 4 * c)
            return unpack(tokens, c, h, w).reshape(-1)
        return [moved(fam.mean(cond)) for cond in conds]
    if "ids-swapped" in wrong:
        return [fam.mean(cond, img_ids=fam.ids_for(wrong)) for cond in conds]
    return [fam.mean(cond) for cond in conds]


def sensitivity_value(fam, key, quantity, wrong, k, index):
    """The closed form under one convention, checked against the Monte Carlo of the backend."""
    prompts = [MAIN] if quantity == "nll" else [MAIN, ""]
    conds = [fam.condition(p, wrong) for p in prompts]
    x = data_for(fam, wrong)
    mus = means_for(fam, wrong, conds)
    value = closed_form(quantity, k, x, mus[0], mus[1] if len(mus) > 1 else None, fam.d)
    mean, se = monte_carlo(fam, quantity, x, conds, wrong, SENSITIVITY_DRAWS, 100 + index)
    assert np.all(np.abs(mean - value) <= 4 * se), (fam.name, key, sorted(wrong), value, mean, se)
    label = "wrong" if wrong else "truth"
    if quantity == "map":  # noise-free in shape: the Monte Carlo map is K̂/K times the closed form
        ratio = mean / value
        # float32 means of size ~1 differenced to ~0.1: a few 1e-5 of each pixel
        assert np.ptp(ratio) < 1e-4 * ratio.mean(), (fam.name, key, np.ptp(ratio))
        print(f"  {fam.name} {key:22s} {label:5s} map closed form total {value.sum():10.4f}   "
              f"Monte Carlo / closed form in every pixel {ratio.min():.6f} … {ratio.max():.6f}")
    else:
        print(f"  {fam.name} {key:22s} {label:5s} closed form {value:12.4f}   "
              f"Monte Carlo {mean:12.4f} ± {se:.4f}")
    return value, mean, se


def sensitivity(fam, right_kernels):
    """The sensitivity table: each wrong convention's closed form next to the truth's."""
    rows = []
    for index, (key, what, quantity, families) in enumerate(WRONG_CONVENTIONS):
        if fam.name not in families:
            continue
        row = dict(convention=key, wrong=what, quantity=quantity, prompt=MAIN)
        if quantity != "nll":
            row["against"] = ""
        truth, truth_mc, truth_se = sensitivity_value(fam, key, quantity, frozenset(), right_kernels,
                                                      index)
        wrong = frozenset([key])
        value, mc, se = sensitivity_value(fam, key, quantity, wrong, kernels(fam, wrong), index)
        if quantity == "map":
            row["truth_map"], row["converges_to_map"] = rounded(truth), rounded(value)
            # how far apart the two maps' shapes are, relative to the truth's largest share
            share, wrong_share = truth / truth.sum(), value / value.sum()
            row["map_shape_difference"] = float(np.abs(wrong_share - share).max() / share.max())
            truth, value = float(truth.sum()), float(value.sum())
            truth_mc, mc = float(truth_mc.sum()), float(mc.sum())
        row["truth"], row["converges_to"] = truth, value
        row["monte_carlo"] = {"draws": SENSITIVITY_DRAWS, "proposal": "uniform over log_snr_range",
                              "truth": truth_mc, "converges_to": mc}
        rows.append(row)
    return rows


# ---------------------------------------------------------------- folders

def clip_config(params, architecture, vocab_size, hidden_states):
    config = {"_name_or_path": "infodiff/exact-family-fixtures", "architectures": [architecture],
              "model_type": "clip_text_model", "hidden_size": params["width"],
              "intermediate_size": 4 * params["width"], "num_hidden_layers": params["layers"],
              "num_attention_heads": 2, "max_position_embeddings": CONTEXT,
              "projection_dim": params["width"], "vocab_size": vocab_size,
              "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": 1,
              "hidden_act": "quick_gelu", "torch_dtype": "float32", "transformers_version": "4.57.6"}
    if hidden_states:
        config["output_hidden_states"] = True
    return config


def t5_config(vocab_size):
    return {"_name_or_path": "infodiff/exact-family-fixtures", "architectures": ["T5EncoderModel"],
            "model_type": "t5", "d_model": T5_WIDTH, "d_ff": 2 * T5_WIDTH, "d_kv": 8, "num_heads": 4,
            "num_layers": T5_LAYERS, "vocab_size": vocab_size, "pad_token_id": 0, "eos_token_id": 1,
            "decoder_start_token_id": 0, "feed_forward_proj": "gated-gelu",
            "is_encoder_decoder": True, "torch_dtype": "float32", "transformers_version": "4.57.6"}


def write_graph(fam, part, graph, config):
    save(graph, os.path.join(fam.folder, part, "model.onnx"))
    write_json(os.path.join(fam.folder, part, "config.json"), config)


def write_sdxl(fam):
    vocab = len(fam.clip.vocab)
    write_graph(fam, "text_encoder", fam.graph_l, clip_config(fam.clip_l, "CLIPTextModel", vocab, True))
    write_graph(fam, "text_encoder_2", fam.graph_g,
                clip_config(fam.clip_g, "CLIPTextModelWithProjection", vocab, True))
    width = CLIP_L["width"] + CLIP_G["width"]
    write_graph(fam, "unet", sdxl_unet_graph(fam.net, fam.abar), {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.36.0",
        "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
        "cross_attention_dim": width, "in_channels": 4, "out_channels": 4,
        "projection_class_embeddings_input_dim": CLIP_G["width"] + 6 * 8, "sample_size": SIDE,
        "time_cond_proj_dim": None})
    return {"_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.36.0",
            "feature_extractor": [None, None], "force_zeros_for_empty_prompt": True,
            "image_encoder": [None, None], "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}


def write_sd3(fam):
    vocab = len(fam.clip.vocab)
    write_graph(fam, "text_encoder", fam.graph_l,
                clip_config(fam.clip_l, "CLIPTextModelWithProjection", vocab, True))
    write_graph(fam, "text_encoder_2", fam.graph_g,
                clip_config(fam.clip_g, "CLIPTextModelWithProjection", vocab, True))
    write_graph(fam, "text_encoder_3", t5_graph(fam.t5), t5_config(len(fam.t5_tokenizer)))
    write_graph(fam, "transformer", sd3_transformer_graph(fam.net), {
        "_class_name": "SD3Transformer2DModel", "_diffusers_version": "0.36.0",
        "attention_head_dim": 8, "caption_projection_dim": T5_WIDTH, "in_channels": 16,
        "joint_attention_dim": T5_WIDTH, "num_attention_heads": 4, "num_layers": 1,
        "out_channels": 16, "patch_size": 2, "pooled_projection_dim": CLIP_L["width"] + CLIP_G["width"],
        "pos_embed_max_size": 16, "sample_size": SIDE})
    return {"_class_name": "StableDiffusion3Pipeline", "_diffusers_version": "0.36.0",
            "feature_extractor": [None, None], "image_encoder": [None, None],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_3": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "tokenizer_3": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}


def write_flux(fam):
    write_graph(fam, "text_encoder", fam.graph_l,
                clip_config(fam.clip_l, "CLIPTextModel", len(fam.clip.vocab), False))
    write_graph(fam, "text_encoder_2", t5_graph(fam.t5), t5_config(len(fam.t5_tokenizer)))
    write_graph(fam, "transformer", flux_transformer_graph(fam.net), {
        "_class_name": "FluxTransformer2DModel", "_diffusers_version": "0.36.0",
        "attention_head_dim": 8, "axes_dims_rope": [2, 2, 4], "guidance_embeds": True,
        "in_channels": 64, "joint_attention_dim": T5_WIDTH, "num_attention_heads": 2, "num_layers": 1,
        "num_single_layers": 1, "out_channels": None, "patch_size": 1,
        "pooled_projection_dim": CLIP_L["width"]})
    return {"_class_name": "FluxPipeline", "_diffusers_version": "0.36.0",
            "feature_extractor": [None, None], "image_encoder": [None, None],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}


CONVENTIONS = {
    "exact-sdxl": {
        "encoder_hidden_states": "text_encoder hidden_states.2 ⊕ text_encoder_2 hidden_states.3 "
                                 "(each CLIP's penultimate layer), [B, 77, 20]",
        "text_embeds": "text_encoder_2 text_embeds (projected pooled output), [B, 12]",
        "time_ids": [PIXELS, PIXELS, 0, 0, PIXELS, PIXELS],
        "timestep": "the nearest trained DDPM timestep, float32 scalar",
        "null_condition": "zeros (model_index.json force_zeros_for_empty_prompt): encoder_hidden_states "
                          "and text_embeds all 0, mu = b0",
        "tokenizer_pad": {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"},
    },
    "exact-sd3": {
        "encoder_hidden_states": "[pad(text_encoder hidden_states.2 ⊕ text_encoder_2 hidden_states.3, "
                                 "to 32) ; text_encoder_3 last_hidden_state at 256 tokens] along the "
                                 "sequence, [B, 333, 32]",
        "pooled_projections": "text_encoder text_embeds ⊕ text_encoder_2 text_embeds, [B, 20]",
        "timestep": "1000·t, float32 [B]",
        "t5_max_sequence_length": 256,
        "null_condition": '"" encoded by every encoder',
        "tokenizer_pad": {"tokenizer": "<|endoftext|>", "tokenizer_2": "!", "tokenizer_3": "<pad>"},
    },
    "exact-flux": {
        "hidden_states": "_pack_latents: [B, (h/2)(w/2), 64], feature c·4 + 2·dy + dx",
        "encoder_hidden_states": "text_encoder_2 (T5) last_hidden_state at 512 tokens, [B, 512, 32]",
        "pooled_projections": "text_encoder pooler_output, [B, 8]",
        "timestep": "t, float32 [B]",
        "img_ids": "(0, row, col) per packed token, int64 [(h/2)(w/2), 3] (rank 2, diffusers ≥ 0.31)",
        "txt_ids": "zeros, int64 [512, 3]",
        "guidance": 1.0,
        "t5_max_sequence_length": 512,
        "null_condition": '"" encoded by every encoder',
        "tokenizer_pad": {"tokenizer": "<|endoftext|>", "tokenizer_2": "<pad>"},
    },
}


def prompt_entry(fam, prompt):
    cond = fam.condition(prompt)
    entry = {"mu": rounded(fam.graph_mean(cond))}
    if "input_ids" in cond:
        entry["input_ids"] = cond["input_ids"]
    else:  # SDXL's "": the ids the tokenizers give, and the mean of encoding them
        encoded = fam.condition(prompt, frozenset(["empty-prompt-encoded"]))
        entry["input_ids"] = encoded["input_ids"]
        entry["mu_encoded"] = rounded(fam.graph_mean(encoded))
    return entry


def write_truth(fam):
    right = kernels(fam)
    if isinstance(fam, FlowFamily):  # the flow's eps_hat is the VP channel's exact denoiser
        sdxl_like = Sdxl.coefficients(None, np.linspace(-10, 10, 41), frozenset())
        flow = fam.coefficients(np.linspace(-10, 10, 41), frozenset())
        check_close(f"{fam.name} flow = VP", np.stack(flow), np.stack(sdxl_like), rtol=1e-12)
    prompts = {p: prompt_entry(fam, p) for p in truth_prompts()}
    conds = [fam.condition(p) for p in ("a red circle", MAIN)]
    check_pointwise(fam, conds, [fam.mean(c) for c in conds])
    lo, hi = fam.log_snr_range()
    truth = {
        "description": "x ~ N(mu(condition), v I) in the latent; the network is the exact denoiser "
                       "(tools/build_family_fixtures.py)",
        "family": fam.name.removeprefix("exact-"), "shape": list(fam.shape), "variance": VARIANCE,
        "image": f"test-{PIXELS}.png", "image_latent": rounded(fam.x),
        "vae": {"scaling_factor": fam.scaling, "shift_factor": fam.shift},
        "prediction": fam.prediction, "conventions": CONVENTIONS[fam.name],
        "log_snr_range": {"min": lo, "max": hi},
        "kernels": {"K": right["bb"], "L": right["zero"],
                    "about": "over log_snr_range (snapped to trained timesteps for SDXL): orthogonal "
                             "i = K‖mu_y − mu_c‖², standard i = K(‖x − mu_c‖² − ‖x − mu_y‖²), "
                             "−log p(x|y) = (d/2)log(2πe) + d·L + K‖x − mu_y‖²"},
        "main_prompt": MAIN, "pid_words": list(PID_WORDS),
        "prompts": prompts,
        "sensitivity": sensitivity(fam, right),
    }
    assert abs(right["aa"] - right["bb"]) < 1e-9 and abs(right["ab"] + right["bb"]) < 1e-9
    write_compact_json(os.path.join(fam.folder, "truth.json"), truth)


def build(cls, seed, clip):
    fam = cls(seed, clip)
    fam.write_common()
    clip.write(os.path.join(fam.folder, "tokenizer"), "<|endoftext|>")
    if cls is not Flux:
        clip.write(os.path.join(fam.folder, "tokenizer_2"), "!")
    if cls is Sd3:
        fam.t5_tokenizer = t5_tokenizer(os.path.join(fam.folder, "tokenizer_3"))
    if cls is Flux:
        fam.t5_tokenizer = t5_tokenizer(os.path.join(fam.folder, "tokenizer_2"))
    fam.build()
    index = {Sdxl: write_sdxl, Sd3: write_sd3, Flux: write_flux}[cls](fam)
    write_json(os.path.join(fam.folder, "model_index.json"), index)
    os.makedirs(os.path.join(fam.folder, "scheduler"))
    write_json(os.path.join(fam.folder, "scheduler", "scheduler_config.json"), fam.scheduler)
    fam.write_vae()
    write_truth(fam)
    print("wrote", os.path.relpath(fam.folder, ROOT))


def main():
    clip = ClipTokenizers()
    for cls, seed in ((Sdxl, 2401), (Sd3, 2402), (Flux, 2403)):
        build(cls, seed, clip)


if __name__ == "__main__":
    main()
