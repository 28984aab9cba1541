"""Samples shapes-flow's EMA weights with the flow ODE (Euler, t from 1 to 0), for a look at what
it learned: one row per prompt, --per-prompt samples each, at guidance 1 (the conditional velocity)
and --guidance G (classifier-free, against the null prompt ""). Writes a PNG grid.

Usage: out/venv-tools/bin/python tools/shapes_flow/sample.py RUN_DIR/ema.pt TOKENIZERS_DIR OUT.png
         [--steps 30] [--per-prompt 6] [--guidance 3]
"""

import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LATENT, PromptIds, load_ema, pack, to_pixels, unpack  # noqa: E402

PROMPTS = ["a red circle", "a blue square", "a green triangle", "a yellow circle",
           "a red circle left of a blue square", "a blue square left of a red circle",
           "a green triangle above a yellow square", "a red square left of a blue square"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ema")
    ap.add_argument("tokenizers")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--per-prompt", type=int, default=6)
    ap.add_argument("--guidance", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_ema(args.ema)
    ids = PromptIds(args.tokenizers)

    prompts = [p for p in PROMPTS for _ in range(args.per_prompt)]
    cond, null = ids(prompts), ids([""] * len(prompts))
    rows = []
    for guidance in (1.0, args.guidance):
        x = pack(torch.randn((len(prompts),) + LATENT, generator=torch.Generator().manual_seed(0)))
        ts = torch.linspace(1.0, 0.0, args.steps + 1)
        with torch.no_grad():
            for k in range(args.steps):
                t = torch.full((len(prompts),), float(ts[k]))
                v = model(x, t, *cond)
                if guidance != 1.0:
                    v = model(x, t, *null) + guidance * (v - model(x, t, *null))
                x = x + (ts[k + 1] - ts[k]) * v
        rows.append(to_pixels(unpack(x)).clamp(-1, 1))
    images = torch.cat(rows)  # [2·P·n, 3, 32, 32]: guidance 1 block, then guidance G block
    n, p = args.per_prompt, len(PROMPTS)
    grid = images.view(2, p, n, 3, 32, 32).permute(1, 4, 0, 2, 5, 3).reshape(p * 32, 2 * n * 32, 3)
    Image.fromarray(((grid.numpy() + 1) * 127.5).round().astype(np.uint8)).resize(
        (2 * n * 64, p * 64), Image.NEAREST).save(args.out)
    print(f"{args.out}: rows {PROMPTS}; left {n} at guidance 1, right {n} at guidance {args.guidance}")


if __name__ == "__main__":
    main()
