"""Builds the export-variant fixtures from fixtures/models/sd-int32-int64t: the same exact
Gaussian model with the tensor names, inputs and VAE sampling that real exporters produce.

  sd-ort-names      ONNX Runtime's SD engines: text encoder output `text_embeddings`, UNet output
                    `latent`, VAE encoder output `latent` SAMPLED in the graph (mean + σ·ε, as ORT's
                    demo and Olive export `latent_dist.sample()`), VAE decoder `latent` → `images`
  sd-random-vae     diffusers' conversion script: VAE encoder output `latent_sample`, sampled in
                    the graph
  sd-unnamed-inputs an Olive-style UNet whose inputs carry generated names (`onnx::Concat_0`, …)
  sd-lcm            an LCM UNet with the extra input `timestep_cond` [B, 256]
  sd-xl-unet        a UNet with SDXL's extra inputs `text_embeds` [B, 1280] and `time_ids` [B, 6]
  sd-cuda-only      a UNet "optimized for CUDA" as ORT's and Olive's SD optimizers leave it: a
                    com.microsoft GroupNorm (NHWC) node, which has no CPU kernel

Every graph computes what the base fixture computes (the random ones: plus noise), so the base's
truth.json holds for all of them. Run with Debian's python3-onnx:

  /usr/bin/python3 tools/build_export_variants.py
"""
import os
import shutil

import onnx
from onnx import TensorProto, helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "models")
BASE = os.path.join(ROOT, "sd-int32-int64t")


def rename(model, old, new):
    """Renames a graph input/output value everywhere it is referenced."""
    graph = model.graph
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def sample_in_graph(model, output_name):
    """Replaces the encoder's output (the latent mean) by mean + exp(½·logvar)·ε, ε ~ N(0, I)."""
    graph = model.graph
    mean = graph.output[0].name
    internal = mean + "_mean"
    for node in graph.node:
        node.output[:] = [internal if name == mean else name for name in node.output]
    graph.initializer.append(helper.make_tensor("logvar_const", TensorProto.FLOAT, [], [-3.0]))
    graph.initializer.append(helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]))
    graph.node.extend([
        helper.make_node("Mul", ["logvar_const", "half"], ["half_logvar"]),
        helper.make_node("Exp", ["half_logvar"], ["std"]),
        helper.make_node("RandomNormalLike", [internal], ["eps"], dtype=TensorProto.FLOAT),
        helper.make_node("Mul", ["eps", "std"], ["scaled_eps"]),
        helper.make_node("Add", [internal, "scaled_eps"], [output_name]),
    ])
    graph.output[0].name = output_name


def extra_inputs(model, inputs):
    """Adds graph inputs the computation does not read (what the denoiser must still be fed)."""
    for name, elem, shape in inputs:
        model.graph.input.append(helper.make_tensor_value_info(name, elem, shape))


def cuda_group_norm(model):
    """Adds 0 · GroupNorm(sample in NHWC) to the output: same numbers, a CUDA-only kernel."""
    graph = model.graph
    output = graph.output[0].name
    internal = output + "_before"
    for node in graph.node:
        node.output[:] = [internal if name == output else name for name in node.output]
    sample = graph.input[0].name
    graph.initializer.extend([
        helper.make_tensor("gn_gamma", TensorProto.FLOAT, [4], [1.0] * 4),
        helper.make_tensor("gn_beta", TensorProto.FLOAT, [4], [0.0] * 4),
        helper.make_tensor("gn_zero", TensorProto.FLOAT, [], [0.0]),
    ])
    graph.node.extend([
        helper.make_node("Transpose", [sample], ["gn_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("GroupNorm", ["gn_nhwc", "gn_gamma", "gn_beta"], ["gn_out"],
                         domain="com.microsoft", epsilon=1e-5, groups=2, activation=0),
        helper.make_node("Transpose", ["gn_out"], ["gn_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["gn_nchw", "gn_zero"], ["gn_nothing"]),
        helper.make_node("Add", [internal, "gn_nothing"], [output]),
    ])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def load(part):
    return onnx.load(os.path.join(BASE, part, "model.onnx"))


def save(model, folder, part):
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        onnx.checker.check_model(model)  # the checker knows no contrib ops
    onnx.save(model, os.path.join(folder, part, "model.onnx"))


def variant(name, edit):
    folder = os.path.join(ROOT, name)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(BASE, folder)
    os.remove(os.path.join(folder, "truth.json"))  # the base's truth applies; tests read it there
    for part, change in edit.items():
        model = load(part)
        change(model)
        save(model, folder, part)
    print("wrote", folder)


def main():
    variant("sd-ort-names", {
        "text_encoder": lambda m: rename(m, "last_hidden_state", "text_embeddings"),
        "unet": lambda m: rename(m, "out_sample", "latent"),
        "vae_encoder": lambda m: sample_in_graph(m, "latent"),
        "vae_decoder": lambda m: (rename(m, "latent_sample", "latent"), rename(m, "sample", "images")),
    })
    variant("sd-random-vae", {"vae_encoder": lambda m: sample_in_graph(m, "latent_sample")})

    def unnamed(m):
        for index, name in enumerate(["sample", "timestep", "encoder_hidden_states"]):
            rename(m, name, f"onnx::{['Concat', 'Unsqueeze', 'MatMul'][index]}_{index}")
    variant("sd-unnamed-inputs", {"unet": unnamed})
    variant("sd-lcm", {"unet": lambda m: extra_inputs(m, [("timestep_cond", TensorProto.FLOAT, ["batch", 256])])})
    variant("sd-cuda-only", {"unet": cuda_group_norm})
    variant("sd-xl-unet", {"unet": lambda m: extra_inputs(m, [
        ("text_embeds", TensorProto.FLOAT, ["batch", 1280]),
        ("time_ids", TensorProto.FLOAT, ["batch", 6]),
    ])})


if __name__ == "__main__":
    main()
