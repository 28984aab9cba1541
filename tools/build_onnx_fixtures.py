#!/usr/bin/python3
"""Builds the small ONNX Stable-Diffusion-layout fixtures under fixtures/models/ (deterministic).

Run from the repository root with Debian's interpreter:  /usr/bin/python3 tools/build_onnx_fixtures.py

Every fixture is a complete SD export folder (model_index.json, scheduler/, tokenizer/, text_encoder/,
unet/, optional vae_encoder/ + vae_decoder/) whose UNet is the EXACT Gaussian denoiser of a
prompt-dependent mean (REFERENCE §2):

    text encoder   h[b, p] = E[input_ids[b, p]] + P[p]                    (a fixed embedding table)
    mean           mu(c)   = A · Σ_p w_p h[p] + b0          (fixed position weights w, linear map A)
    UNet           s = abar[t] (gathered from a constant table), eps = sqrt(1-s)(z - sqrt(s) mu)/(s v + 1 - s)
                   (or v = (eps - sqrt(1-s) z)/sqrt(s) for the v-prediction fixture)
    VAE encoder    8×8 average pooling followed by a fixed 1×1 conv (a known linear map)

so that x ~ N(mu(prompt), v·I) is the data distribution and every information quantity has a closed
form. `truth.json` next to each fixture stores, for a few prompts, the token ids, mu (flattened CHW) and
v, plus the expected prepared latent of the test image.

The tokenizer is a tiny CLIP-format vocabulary: the 512 byte tokens of CLIP, the CLIP merges needed
for a handful of words (kept in CLIP's rank order, so those words tokenize exactly as with the real
vocabulary) and the two special tokens.
"""

import json
import os
import shutil
import struct
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from clip_bpe import BYTE_ENCODER, encode_bytes
import clip_bpe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")
IMAGES = os.path.join(ROOT, "fixtures", "images")
CLIP = os.path.join(os.path.dirname(ROOT), "shared", "clip")
CONTEXT = 77
HIDDEN = 8
OPSET = 14
# mu depends on a position-weighted mean of the hidden states, so word order matters (a plain mean
# would make "a red circle" and "circle red a" identical and hide word-removal mistakes)
POSITION_WEIGHTS = (1 + 0.5 * np.cos(np.arange(CONTEXT) * 0.7)) / CONTEXT

WORDS = [
    "a", "an", "photo", "of", "red", "blue", "green", "circle", "square", "dog", "cat", "on", "the",
    "grass", "big", "small", "and", "with", "sky", "tree", "car", "house", "left", "to", "painting",
]

# prompts whose truth is stored (full prompts and every single-word removal the tests ask for)
FULL_PROMPTS = ["a red circle", "a photo of a big red dog on the green grass", "a blue square"]


# ---------------------------------------------------------------- tokenizer (CLIP byte-level BPE)

def bpe(word, ranks, used=None):
    """CLIP's BPE of one lower-case word; records the merges it applies in `used`."""
    return clip_bpe.bpe(encode_bytes(word), ranks, used)


def build_tiny_tokenizer():
    with open(os.path.join(CLIP, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    all_merges = [tuple(line.split()) for line in lines if line.strip()]
    ranks = {m: i for i, m in enumerate(all_merges)}
    used = set()
    for word in WORDS:
        bpe(word, ranks, used)
    merges = [m for m in all_merges if m in used]
    byte_tokens = list(BYTE_ENCODER.values())
    vocab_list = byte_tokens + [t + "</w>" for t in byte_tokens]
    vocab_list += [a + b for a, b in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    assert len(vocab) == len(vocab_list), "duplicate token"
    tiny_ranks = {m: i for i, m in enumerate(merges)}
    # the filtered merges reproduce CLIP's split of every fixture word
    for word in WORDS:
        assert bpe(word, tiny_ranks) == bpe(word, ranks), word
    return vocab, merges, tiny_ranks


def tokenize(prompt, vocab, ranks, pad_id):
    """input_ids of a simple lower-case ASCII prompt: BOS, word pieces, EOS, padding to 77."""
    ids = [vocab["<|startoftext|>"]]
    for word in prompt.lower().split():
        ids += [vocab[piece] for piece in bpe(word, ranks)]
    ids.append(vocab["<|endoftext|>"])
    assert len(ids) <= CONTEXT
    return ids + [pad_id] * (CONTEXT - len(ids))


def write_tokenizer(folder, vocab, merges, pad_token):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")

    def special(content):
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
                "single_word": False}

    special_map = {"bos_token": special("<|startoftext|>"), "eos_token": special("<|endoftext|>"),
                   "pad_token": pad_token, "unk_token": special("<|endoftext|>")}
    write_json(os.path.join(folder, "special_tokens_map.json"), special_map)
    config = {"add_prefix_space": False, "bos_token": special("<|startoftext|>"),
              "do_lower_case": True, "eos_token": special("<|endoftext|>"), "errors": "replace",
              "model_max_length": CONTEXT, "name_or_path": "tiny-clip", "pad_token": pad_token,
              "tokenizer_class": "CLIPTokenizer", "unk_token": special("<|endoftext|>")}
    write_json(os.path.join(folder, "tokenizer_config.json"), config)


# ---------------------------------------------------------------- schedules

def betas_for(config):
    n = config["num_train_timesteps"]
    kind = config["beta_schedule"]
    if config.get("trained_betas"):
        return np.array(config["trained_betas"], dtype=np.float64)
    if kind == "linear":
        return np.linspace(config["beta_start"], config["beta_end"], n, dtype=np.float64)
    if kind == "scaled_linear":
        return np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, n,
                           dtype=np.float64) ** 2
    if kind == "squaredcos_cap_v2":
        def abar(t):
            return np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
        return np.array([min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)])
    raise ValueError(kind)


def scheduler_config(kind, prediction):
    config = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.14.0",
              "beta_end": 0.012, "beta_schedule": kind, "beta_start": 0.00085,
              "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": prediction,
              "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
              "trained_betas": None}
    if kind == "linear":
        config["beta_start"], config["beta_end"] = 0.0001, 0.02
    return config


# ---------------------------------------------------------------- ONNX helpers

def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def const(name, array):
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def scalar_f(name, value):
    return const(name, np.array(value, dtype=np.float32))


def save(graph, path, external=None):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="infodiff-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if external:
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external, size_threshold=1024, convert_attribute=False)
    else:
        onnx.save_model(model, path)


def fp16_in(nodes, name, fp16):
    """Casts a graph input to float32 when the model is fp16; returns the float32 name."""
    if not fp16:
        return name
    nodes.append(helper.make_node("Cast", [name], [name + "_f32"], to=TensorProto.FLOAT))
    return name + "_f32"


def fp16_out(nodes, internal, name, fp16):
    if fp16:
        nodes.append(helper.make_node("Cast", [internal], [name], to=TensorProto.FLOAT16))
    else:
        nodes.append(helper.make_node("Identity", [internal], [name]))


def text_encoder_graph(embedding, positions, ids_type, fp16, hidden_out=HIDDEN, rng=None):
    """hidden_out > HIDDEN widens the states with [I | small noise] (first HIDDEN dims unchanged)."""
    ftype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["tokens"], axis=0),
        helper.make_node("Add", ["tokens", "positions"], ["hidden8" if hidden_out > HIDDEN else "hidden"]),
    ]
    extra = []
    if hidden_out > HIDDEN:
        widen = np.concatenate([np.eye(HIDDEN), 0.1 * rng.standard_normal((HIDDEN, hidden_out - HIDDEN))], 1)
        nodes.append(helper.make_node("MatMul", ["hidden8", "widen"], ["hidden"]))
        extra.append(const("widen", widen.astype(np.float32)))
    nodes.append(helper.make_node("Gather", ["hidden", "first"], ["pooled"], axis=1))
    fp16_out(nodes, "hidden", "last_hidden_state", fp16)
    fp16_out(nodes, "pooled", "pooler_output", fp16)
    return helper.make_graph(
        nodes, "text_encoder",
        [helper.make_tensor_value_info("input_ids", ids_type, ["batch", CONTEXT])],
        [helper.make_tensor_value_info("last_hidden_state", ftype, ["batch", CONTEXT, hidden_out]),
         helper.make_tensor_value_info("pooler_output", ftype, ["batch", hidden_out])],
        extra + [const("embedding", embedding.astype(np.float32)),
         const("positions", positions.astype(np.float32)),
         const("first", np.array(0, dtype=np.int64))])


def unet_graph(abar, a_matrix, b0, shape, v, timestep, prediction, fp16, emit_nan=False,
               hidden_in=HIDDEN, tile=1, batch="batch"):
    """Exact Gaussian denoiser. timestep: 'int64[B]' | 'float[B]' | 'float[]'. With hidden_in >
    HIDDEN only the first HIDDEN dims of the states are used; with tile > 1 the stored A holds
    d/tile rows, tiled in the graph (keeps large fixtures small)."""
    c, h, w = shape
    ftype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes = []
    extra = []
    z = fp16_in(nodes, "sample", fp16)
    ehs = fp16_in(nodes, "encoder_hidden_states", fp16)
    if hidden_in > HIDDEN:
        nodes.append(helper.make_node("Slice", [ehs, "slice_start", "slice_end", "slice_axis"], ["ehs8"]))
        extra += [const("slice_start", np.array([0], dtype=np.int64)),
                  const("slice_end", np.array([HIDDEN], dtype=np.int64)),
                  const("slice_axis", np.array([2], dtype=np.int64))]
        ehs = "ehs8"
    a_name = "a_matrix"
    if tile > 1:
        nodes.append(helper.make_node("Tile", ["a_rows", "a_repeats"], ["a_matrix"]))
        extra += [const("a_repeats", np.array([tile, 1], dtype=np.int64))]
        a_name = "a_rows"
        a_matrix = a_matrix[: a_matrix.shape[0] // tile]
    if timestep == "int64[B]":
        t_type, t_shape = TensorProto.INT64, [batch]
        nodes.append(helper.make_node("Identity", ["timestep"], ["t_index"]))
    else:
        t_type = ftype
        t_shape = [batch] if timestep == "float[B]" else []
        nodes.append(helper.make_node("Cast", ["timestep"], ["t_float"], to=TensorProto.FLOAT))
        # timesteps are whole numbers; round before the cast so 213.99997 cannot become 213
        nodes.append(helper.make_node("Round", ["t_float"], ["t_round"]))
        nodes.append(helper.make_node("Cast", ["t_round"], ["t_cast"], to=TensorProto.INT64))
        nodes.append(helper.make_node("Reshape", ["t_cast", "shape_minus1"], ["t_index"]))
    nodes += [
        helper.make_node("Gather", ["abar", "t_index"], ["s_flat"], axis=0),
        helper.make_node("Reshape", ["s_flat", "shape_b111"], ["s"]),
        helper.make_node("Mul", [ehs, "position_weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["m"], keepdims=0),
        helper.make_node("Gemm", ["m", "a_matrix", "b0"], ["mu_flat"], transB=1),
        helper.make_node("Reshape", ["mu_flat", "shape_bchw"], ["mu"]),
        helper.make_node("Sqrt", ["s"], ["sqrt_s"]),
        helper.make_node("Sub", ["one", "s"], ["one_minus_s"]),
        helper.make_node("Sqrt", ["one_minus_s"], ["sqrt_1ms"]),
        helper.make_node("Mul", ["sqrt_s", "mu"], ["scaled_mu"]),
        helper.make_node("Sub", [z, "scaled_mu"], ["residual"]),
        helper.make_node("Mul", ["s", "v"], ["sv"]),
        helper.make_node("Add", ["sv", "one_minus_s"], ["denominator"]),
        helper.make_node("Mul", ["sqrt_1ms", "residual"], ["numerator"]),
        helper.make_node("Div", ["numerator", "denominator"], ["eps"]),
    ]
    result = "eps"
    if prediction == "v_prediction":
        nodes += [helper.make_node("Mul", ["sqrt_1ms", z], ["noise_part"]),
                  helper.make_node("Sub", ["eps", "noise_part"], ["eps_minus"]),
                  helper.make_node("Div", ["eps_minus", "sqrt_s"], ["vpred"])]
        result = "vpred"
    if emit_nan:
        nodes.append(helper.make_node("Mul", [result, "nan"], ["poisoned"]))
        result = "poisoned"
    fp16_out(nodes, result, "out_sample", fp16)
    initializers = [
        const("abar", abar.astype(np.float32)),
        const(a_name, a_matrix.astype(np.float32)),
        const("b0", b0.astype(np.float32)),
        const("position_weights", POSITION_WEIGHTS.astype(np.float32).reshape(1, CONTEXT, 1)),
        const("axis1", np.array([1], dtype=np.int64)),
        const("shape_b111", np.array([-1, 1, 1, 1], dtype=np.int64)),
        const("shape_bchw", np.array([-1, c, h, w], dtype=np.int64)),
        scalar_f("one", 1.0), scalar_f("v", v),
    ]
    if timestep != "int64[B]":
        initializers.append(const("shape_minus1", np.array([-1], dtype=np.int64)))
    if emit_nan:
        initializers.append(scalar_f("nan", float("nan")))
    return helper.make_graph(
        nodes, "unet",
        [helper.make_tensor_value_info("sample", ftype, [batch, c, h, w]),
         helper.make_tensor_value_info("timestep", t_type, t_shape),
         helper.make_tensor_value_info("encoder_hidden_states", ftype, [batch, CONTEXT, hidden_in])],
        [helper.make_tensor_value_info("out_sample", ftype, [batch, c, h, w])],
        initializers + extra)


def vae_encoder_graph(conv_w, conv_b, output, fp16, pixels, dynamic=False, latent_channels=4):
    """8×8 average pooling then a 1×1 conv to the latent channels; `latent_parameters` appends
    logvar."""
    ftype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes = []
    x = fp16_in(nodes, "sample", fp16)
    nodes += [helper.make_node("AveragePool", [x], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
              helper.make_node("Conv", ["pooled", "conv_w", "conv_b"], ["mean"])]
    channels = latent_channels
    result = "mean"
    if output == "latent_parameters":
        nodes += [helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
                  helper.make_node("Add", ["zeros", "logvar"], ["logvar_full"]),
                  helper.make_node("Concat", ["mean", "logvar_full"], ["params"], axis=1)]
        channels = 2 * latent_channels
        result = "params"
    fp16_out(nodes, result, output, fp16)
    side = pixels // 8
    # diffusers' conversion script exports dynamic height/width axes
    hw = ["height", "width"] if dynamic else [pixels, pixels]
    latent_hw = ["latent_height", "latent_width"] if dynamic else [side, side]
    return helper.make_graph(
        nodes, "vae_encoder",
        [helper.make_tensor_value_info("sample", ftype, ["batch", 3, *hw])],
        [helper.make_tensor_value_info(output, ftype, ["batch", channels, *latent_hw])],
        [const("conv_w", conv_w.astype(np.float32).reshape(latent_channels, 3, 1, 1)),
         const("conv_b", conv_b.astype(np.float32)),
         scalar_f("zero", 0.0), scalar_f("logvar", -3.0)])


def vae_decoder_graph(fp16, pixels, latent_channels=4, dynamic=False):
    """Nearest 8× upsampling and a fixed 1×1 conv back to RGB (only its I/O matters)."""
    ftype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes = []
    x = fp16_in(nodes, "latent_sample", fp16)
    nodes += [helper.make_node("Resize", [x, "", "scales"], ["up"], mode="nearest"),
              helper.make_node("Conv", ["up", "conv_w"], ["rgb"]),
              helper.make_node("Tanh", ["rgb"], ["image"])]
    fp16_out(nodes, "image", "sample", fp16)
    side = pixels // 8
    w = np.zeros((3, latent_channels, 1, 1), dtype=np.float32)
    for i in range(3):
        w[i, i, 0, 0] = 1.0
    hw = ["height", "width"] if dynamic else [pixels, pixels]
    latent_hw = ["latent_height", "latent_width"] if dynamic else [side, side]
    return helper.make_graph(
        nodes, "vae_decoder",
        [helper.make_tensor_value_info("latent_sample", ftype, ["batch", latent_channels, *latent_hw])],
        [helper.make_tensor_value_info("sample", ftype, ["batch", 3, *hw])],
        [const("scales", np.array([1, 1, 8, 8], dtype=np.float32)), const("conv_w", w)])


# ---------------------------------------------------------------- images

def write_png(path, rgb):
    """Minimal PNG writer (8-bit RGB, no filter) so no imaging library is needed."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def test_image(size):
    """A red disc on a green-blue gradient, size×size RGB uint8."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    rgb = np.stack([40 + 60 * x, 120 + 80 * y, 200 - 100 * x * y], axis=-1)
    disc = (x - 0.45) ** 2 + (y - 0.55) ** 2 < 0.08
    rgb[disc] = [220, 40, 30]
    return np.round(rgb).astype(np.uint8)


def to_model_pixels(rgb):
    """uint8 HWC → float CHW in [-1, 1] exactly as the loader prepares it."""
    return rgb.astype(np.float64).transpose(2, 0, 1) / 127.5 - 1.0


# ---------------------------------------------------------------- fixtures

FIXTURES = [
    # name, ids dtype, timestep, vae output (None = pixel space), unet external file, prediction,
    # schedule, fp16, pad token, scaling-factor config location, emit NaN
    dict(name="sd-int32-int64t", ids=TensorProto.INT32, timestep="int64[B]", vae="latent_sample",
         external=None, prediction="epsilon", schedule="scaled_linear", fp16=False,
         pad="<|endoftext|>", scaling=("vae_decoder", 0.5)),
    dict(name="sd-floatt-weightspb", ids=TensorProto.INT64, timestep="float[B]",
         vae="latent_parameters", external="weights.pb", prediction="epsilon",
         schedule="scaled_linear", fp16=False, pad="!", scaling=None),
    dict(name="sd-scalart-onnxdata", ids=TensorProto.INT64, timestep="float[]",
         vae="latent_parameters", external="model.onnx_data", prediction="epsilon",
         schedule="linear", fp16=False, pad="!", scaling=("vae_encoder", 0.3), dynamic_vae=True),
    dict(name="sd-vpred", ids=TensorProto.INT64, timestep="int64[B]", vae="latent_parameters",
         external=None, prediction="v_prediction", schedule="scaled_linear", fp16=False, pad="!",
         scaling=("vae", 0.4)),
    dict(name="sd-fp16", ids=TensorProto.INT64, timestep="float[]", vae="latent_parameters",
         external=None, prediction="epsilon", schedule="scaled_linear", fp16=True, pad="!",
         scaling=("vae_decoder", 0.18215)),
    dict(name="pixel-space", ids=TensorProto.INT64, timestep="float[B]", vae=None, external=None,
         prediction="epsilon", schedule="scaled_linear", fp16=False, pad="<|endoftext|>",
         scaling=None),
    dict(name="nan-unet", ids=TensorProto.INT32, timestep="int64[B]", vae="latent_sample",
         external=None, prediction="epsilon", schedule="scaled_linear", fp16=False,
         pad="<|endoftext|>", scaling=None, nan=True),
    # SD-sized tensors (512 px images, 4×64×64 latents, 1024-wide hidden states as in SD 2.x) with
    # a trivial-cost graph: measures the backend's own overhead at real sizes (bench/onnx.ts)
    dict(name="sd-realsize", ids=TensorProto.INT64, timestep="float[]", vae="latent_parameters",
         external="weights.pb", prediction="epsilon", schedule="scaled_linear", fp16=False, pad="!",
         scaling=None, pixels=512, hidden_out=1024, tile=64, truth=False),
    # sd-int32-int64t's parameters with the UNet batch fixed to 2 (exports with static shapes):
    # the loader pads calls to 2 items; its truth is sd-int32-int64t/truth.json
    dict(name="sd-fixedbatch", ids=TensorProto.INT32, timestep="int64[B]", vae="latent_sample",
         external=None, prediction="epsilon", schedule="scaled_linear", fp16=False,
         pad="<|endoftext|>", scaling=("vae_decoder", 0.5), batch=2, seed_index=0, truth=False),
]

LATENT_PIXELS = 64
PIXEL_SPACE_PIXELS = 16
VARIANCE = 0.5
TARGET_FULL_INFORMATION = 6.0  # nats of ‖mu_full − mu_""‖² / (2v) for the main prompt


def ablations(prompt):
    words = prompt.split()
    return [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]


def truth_prompts():
    prompts = ["", *FULL_PROMPTS]
    for prompt in FULL_PROMPTS:
        prompts += ablations(prompt)
    seen = []
    for p in prompts:
        if p not in seen:
            seen.append(p)
    return seen


def build_fixture(spec, vocab, merges, ranks, index):
    # a fixture may reuse another's random parameters (same truth, different I/O)
    rng = np.random.default_rng(1000 + spec.get("seed_index", index))
    folder = os.path.join(OUT, spec["name"])
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    pixel_space = spec["vae"] is None
    pixels = spec.get("pixels", PIXEL_SPACE_PIXELS if pixel_space else LATENT_PIXELS)
    tile = spec.get("tile", 1)
    hidden_out = spec.get("hidden_out", HIDDEN)
    shape = (3, pixels, pixels) if pixel_space else (4, pixels // 8, pixels // 8)
    d = int(np.prod(shape))
    pad_id = vocab[spec["pad"]]

    embedding = rng.standard_normal((len(vocab), HIDDEN))
    positions = 0.1 * rng.standard_normal((CONTEXT, HIDDEN))
    conv_w = 0.5 * rng.standard_normal((4, 3))
    conv_b = 0.1 * rng.standard_normal(4)
    scaling = spec["scaling"][1] if spec["scaling"] else (None if pixel_space else 0.18215)

    # expected prepared datum of the test image
    pixels_chw = to_model_pixels(test_image(pixels))
    if pixel_space:
        x_image = pixels_chw
    else:
        pooled = pixels_chw.reshape(3, pixels // 8, 8, pixels // 8, 8).mean(axis=(2, 4))
        x_image = (np.einsum("oc,chw->ohw", conv_w, pooled) + conv_b[:, None, None]) * scaling
    x_flat = x_image.reshape(-1)

    def hidden(prompt):
        ids = tokenize(prompt, vocab, ranks, pad_id)
        return ids, embedding[ids] + positions

    main = FULL_PROMPTS[1]
    m_main = POSITION_WEIGHTS @ hidden(main)[1]
    m_null = POSITION_WEIGHTS @ hidden("")[1]
    a_matrix = np.tile(rng.standard_normal((d // tile, HIDDEN)), (tile, 1))
    gap = a_matrix @ (m_main - m_null)
    a_matrix *= np.sqrt(2 * VARIANCE * TARGET_FULL_INFORMATION / (gap @ gap))
    # centre the prior so the test image is typical for the main prompt
    b0 = x_flat - a_matrix @ m_main + np.sqrt(VARIANCE) * 0.3 * rng.standard_normal(d)

    config = scheduler_config(spec["schedule"], spec["prediction"])
    abar = np.cumprod(1.0 - betas_for(config))

    write_json(os.path.join(folder, "model_index.json"), model_index(pixel_space))
    os.makedirs(os.path.join(folder, "scheduler"))
    write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), config)
    write_tokenizer(os.path.join(folder, "tokenizer"), vocab, merges, spec["pad"])
    save(text_encoder_graph(embedding, positions, spec["ids"], spec["fp16"], hidden_out, rng),
         os.path.join(folder, "text_encoder", "model.onnx"))
    save(unet_graph(abar, a_matrix, b0, shape, VARIANCE, spec["timestep"], spec["prediction"],
                    spec["fp16"], spec.get("nan", False), hidden_out, tile, spec.get("batch", "batch")),
         os.path.join(folder, "unet", "model.onnx"), spec["external"])
    if not pixel_space:
        save(vae_encoder_graph(conv_w, conv_b, spec["vae"], spec["fp16"], pixels,
                               spec.get("dynamic_vae", False)),
             os.path.join(folder, "vae_encoder", "model.onnx"))
        save(vae_decoder_graph(spec["fp16"], pixels), os.path.join(folder, "vae_decoder", "model.onnx"))
    if spec["scaling"]:
        where, value = spec["scaling"]
        os.makedirs(os.path.join(folder, where), exist_ok=True)
        write_json(os.path.join(folder, where, "config.json"),
                   {"_class_name": "AutoencoderKL", "latent_channels": 4, "sample_size": pixels,
                    "scaling_factor": value})

    if spec.get("nan") or spec.get("truth") is False:
        return
    a32, b32 = a_matrix.astype(np.float32).astype(np.float64), b0.astype(np.float32).astype(np.float64)
    prompts = {}
    for prompt in truth_prompts():
        ids, h = hidden(prompt)
        # last_hidden_state as the graph emits it: float32 sums, rounded to fp16 for fp16 models
        h = h.astype(np.float32).astype(np.float16 if spec["fp16"] else np.float32).astype(np.float64)
        w32 = POSITION_WEIGHTS.astype(np.float32).astype(np.float64)
        mu = a32 @ (w32 @ h) + b32
        prompts[prompt] = {"input_ids": ids, "mu": [round(float(x), 9) for x in mu]}
    truth = {
        "description": "x ~ N(mu(prompt), v I) per dimension; UNet = exact denoiser (REFERENCE §2)",
        "shape": list(shape), "variance": VARIANCE, "image": f"test-{pixels}.png",
        "image_latent": [round(float(x), 9) for x in x_flat], "scaling_factor": scaling,
        "prediction_type": spec["prediction"], "beta_schedule": spec["schedule"],
        "pad_id": pad_id, "bos_id": vocab["<|startoftext|>"], "eos_id": vocab["<|endoftext|>"],
        "prompts": prompts,
    }
    write_json(os.path.join(folder, "truth.json"), truth)


def model_index(pixel_space):
    index = {"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.14.0",
             "feature_extractor": [None, None], "requires_safety_checker": False,
             "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
             "text_encoder": ["diffusers", "OnnxRuntimeModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "OnnxRuntimeModel"]}
    if not pixel_space:
        index["vae_decoder"] = ["diffusers", "OnnxRuntimeModel"]
        index["vae_encoder"] = ["diffusers", "OnnxRuntimeModel"]
    return index


def main():
    vocab, merges, ranks = build_tiny_tokenizer()
    os.makedirs(IMAGES, exist_ok=True)
    for size in (LATENT_PIXELS, PIXEL_SPACE_PIXELS):
        write_png(os.path.join(IMAGES, f"test-{size}.png"), test_image(size))
    for index, spec in enumerate(FIXTURES):
        build_fixture(spec, vocab, merges, ranks, index)
        print("wrote", os.path.relpath(os.path.join(OUT, spec["name"]), ROOT))


if __name__ == "__main__":
    main()
