"""Save and load ShapesTiny weights as a plain .npz (no pickle), with the config inside."""

import json

import numpy as np
import torch


def save_npz(path, cfg, state_dict, extra=None):
    arrays = {k: v.detach().float().cpu().numpy() for k, v in state_dict.items()}
    arrays["__config__"] = np.array(json.dumps(cfg))
    if extra is not None:
        arrays["__extra__"] = np.array(json.dumps(extra))
    np.savez(path, **arrays)


def load_npz(path):
    """-> (config dict, state dict of float32 tensors)."""
    data = np.load(path, allow_pickle=False)
    cfg = json.loads(str(data["__config__"]))
    state = {k: torch.from_numpy(np.array(data[k])) for k in data.files if not k.startswith("__")}
    return cfg, state
