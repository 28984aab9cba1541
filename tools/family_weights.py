#!/usr/bin/env python3
"""Fills the weights of a pipeline folder made by tools/build_family_realwidth.py, where the check
runs (the weights do not travel): for every graph with a manifest (`model.onnx.weights.json`), its
external data file `model.onnx_data`, tensor by tensor at the manifest's offsets.

- The transformer's tensors come from diffusers' own transformer class built from the folder's
  transformer/config.json under the manifest's seed (torch.manual_seed, CPU, float32): each tensor
  is the parameter or buffer the manifest names, transposed where the exporter transposed it and
  in the graph's shape where it folded a reshape. So
  `transformer()` below, built the same way, holds exactly the weights infodiff's graph runs;
  `check_transformer` reads the data file back against it.
- The stand-in encoders' and the VAE's tensors are drawn from a normal (σ 0.02; layer and group
  norm weights 1 + that) seeded by the tensor's place in the manifest: the check compares the
  transformer, and these only have to give outputs of the right widths.

    python3 tools/family_weights.py FOLDER [FOLDER…]       # fill, then read the transformer back

Needs PyTorch, NumPy and diffusers (the GPU machine gets diffusers as a carried wheel).
"""
import json
import os
import sys

import numpy as np
import torch

STD = 0.02


def transformer(folder, device="cpu"):
    """The folder's transformer in diffusers, initialised as the manifest says, in eval mode."""
    import diffusers

    config_path = os.path.join(folder, "transformer", "config.json")
    with open(config_path) as f:
        config = json.load(f)
    manifest = read_manifest(os.path.join(folder, "transformer", "model.onnx"))
    cls = getattr(diffusers, config["_class_name"])
    torch.manual_seed(manifest["seed"])
    model = cls.from_config(config)
    return model.to(device=device, dtype=torch.float32).eval()


def read_manifest(graph):
    with open(graph + ".weights.json") as f:
        return json.load(f)


def random_tensor(entry, index):
    rng = np.random.default_rng(index)
    values = rng.standard_normal(entry["dims"], dtype=np.float32) * STD
    key = entry["key"]
    if key.endswith("weight") and "norm" in key:
        values += 1
    return values


def torch_tensor(state, entry):
    tensor = state[entry["key"]].detach().float().cpu().numpy()
    if entry["transposed"]:
        tensor = tensor.T
    if tensor.size != int(np.prod(entry["dims"])):
        raise SystemExit(f"{entry['name']}: {entry['key']} is {list(tensor.shape)}, the graph's "
                         f"tensor {entry['dims']}: the transformer built here is not the exported one")
    # the exporter may have folded a reshape into the graph's tensor (SD 3's positional table)
    return np.ascontiguousarray(tensor, dtype=np.float32).reshape(entry["dims"])


def fill(folder):
    state = None
    for part in sorted(os.listdir(folder)):
        graph = os.path.join(folder, part, "model.onnx")
        if not os.path.exists(graph + ".weights.json"):
            continue
        manifest = read_manifest(graph)
        if any(e["source"] == "torch" for e in manifest["tensors"]) and state is None:
            state = transformer(folder).state_dict()
        data = os.path.join(folder, part, manifest["data"])
        with open(data, "wb") as f:
            f.truncate(manifest["bytes"])
            for index, entry in enumerate(manifest["tensors"]):
                values = torch_tensor(state, entry) if entry["source"] == "torch" else random_tensor(entry, index)
                assert values.nbytes == entry["length"], entry["name"]
                f.seek(entry["offset"])
                f.write(values.astype("<f4").tobytes())
        print(f"{part}: {len(manifest['tensors'])} tensors, {manifest['bytes'] / 2**20:.1f} MiB")


def check_transformer(folder):
    """Reads the transformer's data file back against a transformer built anew (a second process
    builds the same weights: the comparison's premise)."""
    graph = os.path.join(folder, "transformer", "model.onnx")
    manifest = read_manifest(graph)
    state = transformer(folder).state_dict()
    with open(os.path.join(folder, "transformer", manifest["data"]), "rb") as f:
        for entry in manifest["tensors"]:
            f.seek(entry["offset"])
            stored = np.frombuffer(f.read(entry["length"]), dtype="<f4").reshape(entry["dims"])
            if not np.array_equal(stored, torch_tensor(state, entry)):
                raise SystemExit(f"{entry['name']} ({entry['key']}) differs from a transformer built anew")
    print(f"transformer: {len(manifest['tensors'])} tensors read back equal to a fresh build")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__.split("\n\n")[2])
    for folder in sys.argv[1:]:
        fill(folder)
        check_transformer(folder)


if __name__ == "__main__":
    main()
