"""Quick check of text binding: does the true caption denoise a test scene better than a swapped one?

For each test scene with two or more objects: the true caption against (a) the relation test, the
first two objects swapped ("a red circle left of a blue square" -> "a blue square left of a red
circle") and (b) the attribute test, their colours swapped ("a blue circle left of a red square").
Score of a caption = mean over K shared (t, eps) draws of ||eps - eps_hat(x_t | caption)||^2 with t
uniform over 0..999 (common random numbers across captions); lower = more information. Accuracy =
share of scenes where the true caption scores lower. This is a quick proxy for the SDK's i(x; y)
comparison (which weights log-SNR differently), for choosing between checkpoints.

Usage: python3 eval_relations.py WEIGHTS.npz TOKENIZER_DIR TEST_DIR [--scenes N] [--draws K]
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ShapesTiny, scaled_linear_schedule  # noqa: E402
from tokenizer import ShapesTokenizer  # noqa: E402
from weights import load_npz  # noqa: E402

RELATION = re.compile(r"^(.*?) (left of|right of|above|below) (.*?)( and .*)?$")
COLOURS = ("red", "green", "blue", "yellow")


def swapped(caption):
    """(object-swapped, colour-swapped) captions, or None for one-object captions."""
    m = RELATION.match(caption)
    if not m:
        return None
    a, rel, b, rest = m.group(1), m.group(2), m.group(3), m.group(4) or ""
    objects = f"{b} {rel} {a}{rest}"
    ca = next(w for w in a.split() if w in COLOURS)
    cb = next(w for w in b.split() if w in COLOURS)
    a2 = " ".join(cb if w == ca else w for w in a.split())
    b2 = " ".join(ca if w == cb else w for w in b.split())
    colours = f"{a2} {rel} {b2}{rest}"
    return objects, colours


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("tokenizer")
    ap.add_argument("test")
    ap.add_argument("--scenes", type=int, default=300)
    ap.add_argument("--draws", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, state = load_npz(args.weights)
    model = ShapesTiny(cfg)
    model.load_state_dict(state)
    model.eval().to(device)
    tok = ShapesTokenizer(args.tokenizer)
    captions = json.load(open(os.path.join(args.test, "captions.json")))
    images = np.fromfile(os.path.join(args.test, "images.u8"), dtype=np.uint8).reshape(-1, 32, 32, 3)
    _, ac = scaled_linear_schedule()
    ac = ac.float().to(device)
    gen = torch.Generator().manual_seed(args.seed)
    wins = {"relation": [], "attribute": []}
    used = 0
    for i, cap in enumerate(captions):
        pair = swapped(cap)
        if pair is None:
            continue
        if used >= args.scenes:
            break
        used += 1
        x0 = torch.from_numpy(images[i]).permute(2, 0, 1).float().div(127.5).sub(1).to(device)
        k = args.draws
        t = torch.randint(0, 1000, (k,), generator=gen).to(device)
        eps = torch.randn(k, 3, 32, 32, generator=gen).to(device)
        xt = ac[t].sqrt()[:, None, None, None] * x0 + (1 - ac[t]).sqrt()[:, None, None, None] * eps
        texts = [cap, pair[0], pair[1]]
        ids = torch.tensor([tok.input_ids(c) for c in texts], device=device)
        hidden, _ = model.text_encoder(ids)
        scores = []
        for h in hidden:
            pred = model.unet(xt, t, h[None].expand(k, -1, -1))
            scores.append(float((pred - eps).pow(2).sum(dim=(1, 2, 3)).mean()))
        wins["relation"].append(scores[0] < scores[1])
        wins["attribute"].append(scores[0] < scores[2])
    out = {}
    for key, v in wins.items():
        a = np.array(v, dtype=float)
        out[key] = {"accuracy": float(a.mean()), "stderr": float(a.std(ddof=1) / np.sqrt(len(a))), "n": len(a)}
    print(json.dumps({"weights": args.weights, "scenes": used, "draws": args.draws, **out}))


if __name__ == "__main__":
    main()
