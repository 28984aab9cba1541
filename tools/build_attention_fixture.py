#!/usr/bin/python3
"""Builds the cross-attention fixtures under fixtures/models/ (deterministic).

Run from the repository root with Debian's interpreter:  /usr/bin/python3 tools/build_attention_fixture.py

- attention-tiny/           pixel-space SD layout (3×8×8 data) whose UNet has two cross-attention layers,
                            `.../attn2/Softmax` of [B·2 heads, 64, 77] (diffusers' AttnProcessor layout)
                            and [B, 2 heads, 16, 77] (the layout of torch's decomposed
                            scaled_dot_product_attention, AttnProcessor2_0), and one self-attention layer
                            (`.../attn1/Softmax`, which attention maps must ignore), exported unfused with
                            torch.onnx.export.
- attention-tiny-external/  the same UNet with its weights in unet/model.onnx_data (external data).
- attention-fused/          a UNet whose attention is one com.microsoft MultiHeadAttention node: a fused
                            export, which attention maps must refuse.

Known truth: the cross-attention query of a pixel is a fixed positional code (to_q is zero, so the
attention does not depend on the sample or the timestep, only on the prompt) and the text encoder is a
fixed embedding table in which "red", "blue", "circle" and "square" point along the four code axes:
head 0 at pixel (x, y) scores a token by gain·(3·[red]·u + 3·[blue]·(1−u) + 3·[circle]·v + 3·[square]·(1−v))
with u = (x+½)/s, v = (y+½)/s; head 1 has half the gain. So attention to "red" sits on the right,
"blue" on the left, "circle" at the bottom, "square" at the top. truth.json stores the torch
probabilities (first 6 token positions, all others are the padding token's copy of position 5) and
out_sample for two prompts at two timesteps, so the exported graph can be compared with torch.

The tokenizer, scheduler and model_index.json are copied from fixtures/models/pixel-space.
"""

import json
import os
import shutil

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "fixtures", "models")
SOURCE = os.path.join(MODELS, "pixel-space")
CONTEXT = 77
HIDDEN = 8
DIM = 8
HEADS = 2
SIZE = 8
GAIN = 4.0
OPSET = 14
KEPT_POSITIONS = 6
PROMPTS = ["a red circle", "a blue square"]
TIMESTEPS = [500.0, 100.0]
# word → axis of the positional code its key points along
AXES = {"red": 0, "blue": 1, "circle": 2, "square": 3}


def positional_code(size):
    """[size·size, DIM] query code: head 0 = GAIN·(u, 1−u, v, 1−v), head 1 = half of it."""
    code = np.zeros((size * size, DIM), np.float32)
    for y in range(size):
        for x in range(size):
            u, v = (x + 0.5) / size, (y + 0.5) / size
            axes = np.array([u, 1 - u, v, 1 - v], np.float32)
            code[y * size + x, :4] = GAIN * axes
            code[y * size + x, 4:] = 0.5 * GAIN * axes
    return code


class Attention(nn.Module):
    """Multi-head attention with the softmax written out (as diffusers' unfused AttnProcessor)."""

    def __init__(self, dim, context_dim, heads, code=None, four_d=False):
        super().__init__()
        self.heads = heads
        self.four_d = four_d
        self.scale = (dim // heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.code = None if code is None else nn.Parameter(torch.from_numpy(code), requires_grad=False)

    def split(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3).reshape(
            b * self.heads, n, c // self.heads)

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, c = x.shape
        q = self.to_q(x)
        if self.code is not None:
            q = q + self.code
        q, k, v = self.split(q), self.split(self.to_k(context)), self.split(self.to_v(context))
        if self.four_d:
            q, k, v = (t.reshape(b, self.heads, t.shape[1], t.shape[2]) for t in (q, k, v))
            probs = (torch.matmul(q, k.transpose(2, 3)) * self.scale).softmax(dim=-1)  # [B, heads, n, 77]
            out = torch.matmul(probs, v).reshape(b * self.heads, n, c // self.heads)
        else:
            probs = (torch.bmm(q, k.transpose(1, 2)) * self.scale).softmax(dim=-1)  # [B·heads, n, 77]
            out = torch.bmm(probs, v)
        self.probs = probs
        out = out.reshape(b, self.heads, n, c // self.heads).permute(0, 2, 1, 3).reshape(b, n, c)
        return self.to_out(out)


class TransformerBlock(nn.Module):
    def __init__(self, size, self_attention):
        super().__init__()
        self.attn1 = Attention(DIM, DIM, HEADS) if self_attention else None
        self.attn2 = Attention(DIM, HIDDEN, HEADS, positional_code(size), four_d=not self_attention)

    def forward(self, x, context):
        if self.attn1 is not None:
            x = x + self.attn1(x)
        return x + self.attn2(x, context)


class Transformer(nn.Module):
    def __init__(self, size, self_attention):
        super().__init__()
        self.transformer_blocks = nn.ModuleList([TransformerBlock(size, self_attention)])

    def forward(self, x, context):
        b, c, h, w = x.shape
        y = x.reshape(b, c, h * w).permute(0, 2, 1)
        y = self.transformer_blocks[0](y, context)
        return y.permute(0, 2, 1).reshape(b, c, h, w)


class Block(nn.Module):
    def __init__(self, size, self_attention):
        super().__init__()
        self.attentions = nn.ModuleList([Transformer(size, self_attention)])

    def forward(self, x, context):
        return self.attentions[0](x, context)


class TinyUnet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(3, DIM, 1)
        self.time_embedding = nn.Linear(1, DIM)
        self.down_blocks = nn.ModuleList([Block(SIZE, True), Block(SIZE // 2, False)])
        self.conv_out = nn.Conv2d(DIM, 3, 1)

    def forward(self, sample, timestep, encoder_hidden_states):
        t = self.time_embedding((timestep / 1000.0).reshape(-1, 1))
        x = self.conv_in(sample) + t[:, :, None, None]
        a = self.down_blocks[0](x, encoder_hidden_states)
        b = self.down_blocks[1](nn.functional.avg_pool2d(a, 2), encoder_hidden_states)
        b = nn.functional.interpolate(b, scale_factor=2.0, mode="nearest")
        return 0.1 * self.conv_out(a + b)


def build_unet():
    torch.manual_seed(7)
    unet = TinyUnet()
    with torch.no_grad():
        for p in unet.parameters():
            p.mul_(0.5)
        for block in unet.down_blocks:
            attn2 = block.attentions[0].transformer_blocks[0].attn2
            attn2.to_q.weight.zero_()
            # keys read the first four hidden dimensions, the same axes for both heads
            k = torch.zeros(DIM, HIDDEN)
            for i in range(4):
                k[i, i] = 1.0
                k[4 + i, i] = 1.0
            attn2.to_k.weight.copy_(k)
    return unet.eval()


def embedding_table(vocab):
    rng = np.random.default_rng(11)
    table = (0.1 * rng.standard_normal((len(vocab), HIDDEN))).astype(np.float32)
    for word, axis in AXES.items():
        row = vocab[word + "</w>"]
        table[row, :4] = 0.0
        table[row, axis] = 3.0
    return table


def tokenize(prompt, vocab):
    ids = [vocab["<|startoftext|>"]] + [vocab[w + "</w>"] for w in prompt.split()] + [
        vocab["<|endoftext|>"]]
    return ids + [vocab["<|endoftext|>"]] * (CONTEXT - len(ids))


def text_encoder_graph(table):
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", CONTEXT])
    hidden = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                           ["batch", CONTEXT, HIDDEN])
    pooled = helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch", HIDDEN])
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0),
        helper.make_node("ReduceMean", ["last_hidden_state"], ["pooler_output"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "text_encoder", [ids], [hidden, pooled],
                              [numpy_helper.from_array(table, "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def export_unet(unet, path):
    sample = torch.zeros(1, 3, SIZE, SIZE)
    timestep = torch.zeros(1)
    hidden = torch.zeros(1, CONTEXT, HIDDEN)
    torch.onnx.export(unet, (sample, timestep, hidden), path,
                      input_names=["sample", "timestep", "encoder_hidden_states"],
                      output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"},
                                    "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch"}},
                      opset_version=OPSET, do_constant_folding=True)
    model = onnx.load(path)
    softmax = [(n.name, n.output[0]) for n in model.graph.node if n.op_type == "Softmax"]
    assert len([s for s in softmax if "/attn2/" in s[0]]) == 2, softmax
    assert len([s for s in softmax if "/attn1/" in s[0]]) == 1, softmax
    return model, softmax


def fused_unet_graph():
    """sample → tokens [B,64,3] → MultiHeadAttention(query, text keys/values) → out_sample."""
    rng = np.random.default_rng(3)
    w = lambda *shape: numpy_helper.from_array((0.3 * rng.standard_normal(shape)).astype(np.float32))
    inits = [w(3, DIM), w(HIDDEN, DIM), w(HIDDEN, DIM), w(DIM, 3)]
    for init, name in zip(inits, ["wq", "wk", "wv", "wo"]):
        init.name = name
    inits += [numpy_helper.from_array(np.array([0, 3, SIZE * SIZE], np.int64), "shape_bcn"),
              numpy_helper.from_array(np.array([0, 3, SIZE, SIZE], np.int64), "shape_bchw"),
              numpy_helper.from_array(np.array([0.0], np.float32), "zero")]
    prefix = "/down_blocks.0/attentions.0/transformer_blocks.0/attn2"
    nodes = [
        helper.make_node("Reshape", ["sample", "shape_bcn"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["tokens"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tokens", "wq"], ["q"]),
        helper.make_node("MatMul", ["encoder_hidden_states", "wk"], ["k"]),
        helper.make_node("MatMul", ["encoder_hidden_states", "wv"], ["v"]),
        helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["attended"],
                         name=prefix + "/MultiHeadAttention", domain="com.microsoft", num_heads=HEADS),
        helper.make_node("MatMul", ["attended", "wo"], ["projected"]),
        helper.make_node("Transpose", ["projected"], ["channels"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["channels", "shape_bchw"], ["image"]),
        helper.make_node("Mul", ["timestep", "zero"], ["t0"]),
        helper.make_node("Reshape", ["t0", "shape_t"], ["t1"]),
        helper.make_node("Add", ["image", "t1"], ["out_sample"]),
    ]
    inits.append(numpy_helper.from_array(np.array([-1, 1, 1, 1], np.int64), "shape_t"))
    inputs = [
        helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE]),
        helper.make_tensor_value_info("timestep", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT,
                                      ["batch", CONTEXT, HIDDEN]),
    ]
    outputs = [helper.make_tensor_value_info("out_sample", TensorProto.FLOAT,
                                             ["batch", 3, SIZE, SIZE])]
    graph = helper.make_graph(nodes, "fused_unet", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 7
    return model


def copy_common(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "unet"))
    os.makedirs(os.path.join(out, "text_encoder"))
    for sub in ["tokenizer", "scheduler"]:
        shutil.copytree(os.path.join(SOURCE, sub), os.path.join(out, sub))
    shutil.copy(os.path.join(SOURCE, "model_index.json"), os.path.join(out, "model_index.json"))


def main():
    with open(os.path.join(SOURCE, "tokenizer", "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    table = embedding_table(vocab)
    unet = build_unet()

    folders = {name: os.path.join(MODELS, name)
               for name in ["attention-tiny", "attention-tiny-external", "attention-fused"]}
    for out in folders.values():
        copy_common(out)
        onnx.save(text_encoder_graph(table), os.path.join(out, "text_encoder", "model.onnx"))

    model, softmax = export_unet(unet, os.path.join(folders["attention-tiny"], "unet", "model.onnx"))
    onnx.save(model, os.path.join(folders["attention-tiny-external"], "unet", "model.onnx"),
              save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx_data",
              size_threshold=0)
    onnx.save(fused_unet_graph(), os.path.join(folders["attention-fused"], "unet", "model.onnx"))

    # truth: torch probabilities and outputs for two prompts at two timesteps
    ids = [tokenize(p, vocab) for p in PROMPTS]
    hidden = torch.from_numpy(table[np.array(ids)])
    sample = torch.from_numpy(np.random.default_rng(5).standard_normal((2, 3, SIZE, SIZE)).astype(
        np.float32))
    timestep = torch.tensor(TIMESTEPS)
    with torch.no_grad():
        out = unet(sample, timestep, hidden)
    layers = []
    for index, block in enumerate(unet.down_blocks):
        attn2 = block.attentions[0].transformer_blocks[0].attn2
        dims = list(attn2.probs.shape)  # [2·heads, n, 77] or [2, heads, n, 77]
        probs = attn2.probs.numpy().reshape(2 * HEADS, -1, CONTEXT)
        assert np.allclose(probs[:, :, KEPT_POSITIONS:], probs[:, :, KEPT_POSITIONS - 1:KEPT_POSITIONS])
        node = [name for name, _ in softmax if f"/down_blocks.{index}/" in name and "/attn2/" in name]
        layers.append({
            "node": node[0],
            "size": SIZE >> index,
            "dims": dims,
            "probs": [round(float(v), 7) for v in probs[:, :, :KEPT_POSITIONS].reshape(-1)],
        })
    truth = {
        "description": "torch truth for tools/build_attention_fixture.py; probs keep the first "
                       f"{KEPT_POSITIONS} token positions ([2·heads, n, {KEPT_POSITIONS}] row-major, "
                       "whatever the layer's dims), the "
                       "others equal the last kept one (padding = EOS)",
        "prompts": PROMPTS,
        "inputIds": ids,
        "timesteps": TIMESTEPS,
        "heads": HEADS,
        "keptPositions": KEPT_POSITIONS,
        "sample": [round(float(v), 7) for v in sample.numpy().reshape(-1)],
        "outSample": [round(float(v), 7) for v in out.numpy().reshape(-1)],
        "layers": layers,
        "selfAttentionNodes": [name for name, _ in softmax if "/attn1/" in name],
    }
    with open(os.path.join(folders["attention-tiny"], "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    for name, out in folders.items():
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
        print(f"{name}: {size} bytes")


if __name__ == "__main__":
    main()
