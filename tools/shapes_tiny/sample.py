"""DDIM (eta = 0) sampling from a ShapesTiny model and a PNG grid, for sanity checks.

Follows the shipped scheduler_config.json: 'leading' spacing with steps_offset 1,
set_alpha_to_one false, no clipping of the predicted x0.

Usage (here, CPU): python3 sample.py WEIGHTS.npz TOKENIZER_DIR OUT.png [--guidance G] [--steps N]
"""

import argparse

import numpy as np
import torch

from model import ShapesTiny, scaled_linear_schedule
from weights import load_npz

PROMPTS = [
    "a red circle",
    "a blue square",
    "a green triangle",
    "a yellow circle",
    "a large red square",
    "a small blue circle",
    "a red circle left of a blue square",
    "a green triangle above a yellow circle",
]


@torch.no_grad()
def ddim_sample(model, input_ids, steps=50, guidance=1.0, seed=0, null_ids=None):
    """Images in [-1, 1], [B,3,32,32]. guidance > 1 uses classifier-free guidance with null_ids."""
    device = input_ids.device
    _, alphas_cumprod = scaled_linear_schedule()
    ac = alphas_cumprod.to(torch.float32).to(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(input_ids.shape[0], 3, 32, 32, generator=gen).to(device)
    context, _ = model.text_encoder(input_ids)
    if guidance != 1.0:
        null_context, _ = model.text_encoder(null_ids.expand_as(input_ids))
    ratio = 1000 // steps
    timesteps = [i * ratio + 1 for i in reversed(range(steps))]
    for t in timesteps:
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=device)
        eps = model.unet(x, tt, context)
        if guidance != 1.0:
            eps_null = model.unet(x, tt, null_context)
            eps = eps_null + guidance * (eps - eps_null)
        a_t = ac[t]
        a_prev = ac[t - ratio] if t - ratio >= 0 else ac[0]
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


def save_grid(rows, path, scale=4):
    """rows: list of [B,3,32,32] tensors in [-1,1]; one row each, upscaled by `scale`."""
    from PIL import Image
    arrays = []
    for r in rows:
        a = ((r.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        pad = np.full((a.shape[0], 32, 2, 3), 128, np.uint8)
        arrays.append(np.concatenate([np.concatenate([im, p], axis=1) for im, p in zip(a, pad)], axis=1))
    grid = np.concatenate([np.concatenate([a, np.full((2, a.shape[1], 3), 128, np.uint8)]) for a in arrays])
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)


def main():
    import os
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from tokenizer import ShapesTokenizer
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("tokenizer")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    cfg, state = load_npz(args.weights)
    model = ShapesTiny(cfg)
    model.load_state_dict(state)
    model.eval()
    tok = ShapesTokenizer(args.tokenizer)
    ids = torch.tensor([tok.input_ids(p) for p in PROMPTS for _ in range(args.seeds)])
    null = torch.tensor([tok.input_ids("")])
    for g in args.guidance:
        x = ddim_sample(model, ids, args.steps, g, seed=0, null_ids=null)
        rows = [x[i * args.seeds:(i + 1) * args.seeds] for i in range(len(PROMPTS))]
        # one grid row per prompt
        path = args.out.replace(".png", f"_g{g:g}.png")
        save_grid(rows, path)
        print("wrote", path, "rows:", PROMPTS)


if __name__ == "__main__":
    main()
