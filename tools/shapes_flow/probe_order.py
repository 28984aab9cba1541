"""Does a shapes-flow checkpoint read its caption's word order? Two velocity-level probes.

Relation swaps and the samples' named order (tools/measure_binding.ts) say whether the model puts
the objects where a relation says. These two say why not, on the PyTorch weights, in seconds:

1. **Order sensitivity.** For two-object captions A = "a C1 S1 REL a C2 S2" and their swaps
   B = "a C2 S2 REL a C1 S1", the mean squared change of the velocity E‖v(A) − v(B)‖², over the
   mean squared change when one colour word is replaced (C1 → C3), E‖v(A) − v(A')‖². A model that
   reads its caption as a bag of words gives 0; one that reads order gives a share comparable to a
   word's.
2. **Placement at high noise.** At t = 0.98 the predicted clean image x̂ = x_t − t·v̂, averaged over
   noise, is the model's E[x | caption] at the start of sampling: where it will put each colour.
   The signed gap is the centroid of the subject's colour minus the object's along the relation's
   axis, signed so that positive means "as the caption says" (in pixels of the 32×32 image). With
   --data, the same gap on the training images of two-object captions gives the target.

x_t is t·ε (the clean part left out), so only high noise levels (t ≥ 0.8) are probed.

Usage: python tools/shapes_flow/probe_order.py EMA_PT TOKENIZERS_DIR [--data DIR...] [--draws 64]
"""

import argparse
import itertools
import json
import os
import random
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LATENT, PromptIds, load_ema, pack, to_pixels, unpack  # noqa: E402

COLOURS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle"]
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


def colour_evidence(img):
    """[..., 3, H, W] RGB in [0, 1] → [..., 4, H, W]: how much each palette colour a pixel shows."""
    r, g, b = img.unbind(-3)
    return torch.stack([(r - torch.maximum(g, b)), (g - torch.maximum(r, b)), (b - torch.maximum(r, g)),
                        (torch.minimum(r, g) - b)], -3).clamp(min=0)


def centroid(mask, axis):
    """Centroid of a [H, W] weight map along axis 0 (x, columns) or 1 (y, rows), in pixels."""
    profile = mask.sum(0) if axis == 0 else mask.sum(1)
    return float((profile * torch.arange(len(profile))).sum() / profile.sum().clamp(min=1e-9))


def signed_gap(evidence, c1, c2, relation):
    axis, sign = RELATIONS[relation]
    return sign * (centroid(evidence[COLOURS.index(c1)], axis) - centroid(evidence[COLOURS.index(c2)], axis))


def captions(count, seed):
    rng = random.Random(seed)
    combos = [(c1, s1, rel, c2, s2) for c1, c2 in itertools.permutations(COLOURS, 2)
              for s1 in SHAPES for s2 in SHAPES for rel in RELATIONS]
    return rng.sample(combos, count)


def data_gap(folders):
    """The signed gap on training images of two-object captions (the target)."""
    gaps = []
    for folder in folders:
        with open(os.path.join(folder, "captions.json")) as f:
            caps = json.load(f)
        px = np.fromfile(os.path.join(folder, "images.u8"), dtype=np.uint8).reshape(len(caps), 32, 32, 3)
        for i, c in enumerate(caps):
            words = c.split()
            if "and" in words:
                continue
            rel = next((r for r in RELATIONS if f" {r} " in c), None)
            named = [w for w in words if w in COLOURS]
            if rel is None or len(named) != 2 or named[0] == named[1]:
                continue
            ev = colour_evidence(torch.from_numpy(px[i]).permute(2, 0, 1).float() / 255)
            gaps.append(signed_gap(ev, named[0], named[1], rel))
    return float(np.mean(gaps)), float(np.std(gaps) / np.sqrt(len(gaps))), len(gaps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ema")
    ap.add_argument("tokenizers")
    ap.add_argument("--data", nargs="*", default=[])
    ap.add_argument("--captions", type=int, default=24)
    ap.add_argument("--draws", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_ema(args.ema)
    prompt_ids = PromptIds(args.tokenizers)
    n = args.draws

    def velocity(caption, xt, t):
        with torch.no_grad():
            return model(xt, torch.full((n,), t), *prompt_ids([caption] * n))

    eps = pack(torch.randn((n,) + LATENT, generator=torch.Generator().manual_seed(args.seed)))
    combos = captions(args.captions, args.seed)
    for t in (0.95, 0.8):
        order, word = [], []
        for c1, s1, rel, c2, s2 in combos:
            c3 = next(c for c in COLOURS if c not in (c1, c2))
            a = velocity(f"a {c1} {s1} {rel} a {c2} {s2}", t * eps, t)
            b = velocity(f"a {c2} {s2} {rel} a {c1} {s1}", t * eps, t)
            w = velocity(f"a {c3} {s1} {rel} a {c2} {s2}", t * eps, t)
            order.append(float((a - b).pow(2).mean()))
            word.append(float((a - w).pow(2).mean()))
        print(f"t={t}: order sensitivity E|v(A)-v(swap A)|^2 / E|v(A)-v(colour changed)|^2 = "
              f"{np.mean(order) / np.mean(word):.4f} ({np.mean(order):.2e} / {np.mean(word):.2e}, "
              f"{len(combos)} captions x {n} draws)")
    t = 0.98
    gaps = []
    for c1, s1, rel, c2, s2 in combos:
        v = velocity(f"a {c1} {s1} {rel} a {c2} {s2}", t * eps, t)
        mean = ((to_pixels(unpack(t * eps - t * v)) + 1) / 2).mean(0)
        gaps.append(signed_gap(colour_evidence(mean), c1, c2, rel))
    print(f"t={t}: signed gap of E[x | caption], subject minus object along the relation "
          f"(positive = as captioned): {np.mean(gaps):+.2f} +- {np.std(gaps) / np.sqrt(len(gaps)):.2f} px "
          f"({len(gaps)} captions)")
    if args.data:
        mean, se, count = data_gap(args.data)
        print(f"training images, same gap: {mean:+.2f} +- {se:.2f} px ({count} two-object captions)")


if __name__ == "__main__":
    main()
