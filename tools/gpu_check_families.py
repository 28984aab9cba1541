#!/usr/bin/env python3
"""diffusers' half of the GPU check's families step (tools/gpu-check.sh, issue 24): the very
transformers infodiff ran in tools/gpu_check_families.ts (built from each folder's config with the
manifest's seed, tools/family_weights.py, so their weights are the graph's) under PyTorch eager on
CUDA, fed what infodiff fed: each item's x_α at its log-SNR α and its prompt's encoder outputs as
infodiff wrote them. Each prediction is turned into ε̂ as the pipelines' own pieces do it: t = σ(−α/2),
x_t = s·x_α with s = √((1 − t)² + t²); FLUX.1 packs x_t with FluxPipeline._pack_latents, builds
img_ids with _prepare_latent_image_ids and zero txt_ids, feeds timestep t and guidance 1.0, and
unpacks with _unpack_latents; SD 3 feeds the latent and timestep 1000·t; then ε̂ = x_t + (1 − t)·v̂.
Compares them with infodiff's, times batches and appends a table to summary.md.

    python3 tools/gpu_check_families.py --work DIR [--device cuda] [--batches 1,4] [--calls 2]

fp32 without TF32 on both sides. Bound: max |Δε̂| ≤ 1e-3 of max |ε̂| (as the UNet check's fp32) and of
max |(1 − t)·v̂|, the network's own part of ε̂ (x_t, which both compute alike, does not swamp it).
Exit status 1 when the bound is exceeded or a model's predictions are missing.
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_weights import transformer  # noqa: E402

BOUND = 1e-3


def read(work, label, name, shape):
    return np.fromfile(os.path.join(work, label, name), dtype="<f4").reshape(shape)


class Family:
    """One model's transformer and the pipeline's conventions around it."""

    def __init__(self, folder, meta, device):
        from diffusers import FluxPipeline

        self.flux = meta["family"] == "FluxTransformer2DModel"
        self.pipeline = FluxPipeline
        self.model = transformer(folder, device)
        self.device = device
        self.c, self.h, self.w = meta["shape"]
        self.guidance = meta.get("guidance")

    def epsilon(self, noisy, log_snr, states, pooled):
        """ε̂ of a batch: noisy [B, C, H, W] x_α, log_snr [B], states [B, L, W], pooled [B, P]."""
        dev, f32 = self.device, torch.float32
        b = noisy.shape[0]
        t = torch.sigmoid(-torch.as_tensor(log_snr, dtype=torch.float64) / 2)
        s = torch.sqrt((1 - t) ** 2 + t ** 2)
        x_t = (torch.as_tensor(noisy, dtype=torch.float64) * s[:, None, None, None]).to(dev, f32)
        t32 = t.to(dev, f32)
        states = torch.as_tensor(states, device=dev)
        pooled = torch.as_tensor(pooled, device=dev)
        with torch.no_grad():
            if self.flux:
                packed = self.pipeline._pack_latents(x_t, b, self.c, self.h, self.w)
                img_ids = self.pipeline._prepare_latent_image_ids(b, self.h // 2, self.w // 2, dev, f32)
                txt_ids = torch.zeros(states.shape[1], 3, device=dev, dtype=f32)
                extra = {}
                if self.guidance is not None:
                    extra["guidance"] = torch.full([b], self.guidance, device=dev, dtype=f32)
                v = self.model(hidden_states=packed, timestep=t32, pooled_projections=pooled,
                               encoder_hidden_states=states, txt_ids=txt_ids, img_ids=img_ids,
                               return_dict=False, **extra)[0]
                # the image size in pixels and the VAE factor (8) give back the latent's h × w
                v = self.pipeline._unpack_latents(v, self.h * 8, self.w * 8, 8)
            else:
                v = self.model(hidden_states=x_t, timestep=1000 * t32, encoder_hidden_states=states,
                               pooled_projections=pooled, return_dict=False)[0]
        return x_t + (1 - t32)[:, None, None, None] * v, x_t


def compare(work, label, folder, device):
    with open(os.path.join(work, label, "inputs.json")) as f:
        meta = json.load(f)
    family = Family(folder, meta, device)
    items = meta["items"]
    shape = meta["shape"]
    noisy = read(work, label, "noisy.f32", [len(items), *shape])
    states = read(work, label, "states.f32", [len(meta["prompts"]), *meta["stateShape"]])
    pooled = read(work, label, "pooled.f32", [len(meta["prompts"]), meta["pooledLength"]])
    ours = read(work, label, "infodiff.f32", [len(items), *shape])
    theirs, network = [], []
    for i, (p, a) in enumerate(items):
        epsilon, x_t = family.epsilon(noisy[i:i + 1], [meta["logSnrs"][a]], states[p:p + 1], pooled[p:p + 1])
        theirs.append(epsilon.cpu().numpy())
        network.append((epsilon - x_t).cpu().numpy())
    theirs, network = np.concatenate(theirs), np.concatenate(network)
    difference = np.max(np.abs(ours - theirs))
    # against ε̂ and against the network's own part of it, (1 − t)·v̂, which x_t does not swamp
    errors = (float(difference / np.max(np.abs(theirs))), float(difference / np.max(np.abs(network))))
    return family, meta, errors, noisy[:1], states[:1], pooled[:1]


def time_batch(family, noisy, states, pooled, batch, calls):
    args = (np.repeat(noisy, batch, 0), [0.0] * batch, np.repeat(states, batch, 0), np.repeat(pooled, batch, 0))
    try:
        family.epsilon(*args)  # warm-up
        if family.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            family.epsilon(*args)
        if family.device == "cuda":
            torch.cuda.synchronize()
        return {"batch": batch, "itemsPerSecond": calls * batch / (time.perf_counter() - start)}
    except torch.OutOfMemoryError as error:
        return {"batch": batch, "error": str(error).split("\n")[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--calls", type=int, default=2)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with open(os.path.join(args.work, "infodiff-families.json")) as f:
        report = json.load(f)
    card = torch.cuda.get_device_name(0) if args.device == "cuda" else args.device
    lines = [f"\n## Families at real width ({datetime.date.today()}, {card}; infodiff on "
             f"{report['device']}, adapter {report.get('adapter')})\n",
             "| model | latent | max abs(Δε̂) / max abs(ε̂) | … / max abs((1 − t)·v̂) | bound | batch | "
             "infodiff items/s | diffusers items/s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    failed = False
    for label, run in report["models"].items():
        try:
            family, meta, errors, noisy, states, pooled = compare(args.work, label, run["folder"], args.device)
        except FileNotFoundError as error:
            print(f"{label}: {error}", file=sys.stderr)
            failed = True
            continue
        ok = max(errors) <= BOUND
        failed |= not ok
        print(f"{label}: max |Δε̂| / max |ε̂| = {errors[0]:.2e}, / max |(1 − t)·v̂| = {errors[1]:.2e} "
              f"({'within' if ok else 'OVER'} {BOUND})")
        ours = {t["batch"]: t for t in run["timings"]}
        for batch in map(int, args.batches.split(",")):
            theirs = time_batch(family, noisy, states, pooled, batch, args.calls)
            mine = ours.get(batch, {})
            speed = lambda r: f"{r['itemsPerSecond']:.3g}" if "itemsPerSecond" in r else r.get("error", "—")
            lines.append(f"| {label} | {'×'.join(map(str, meta['shape']))} | {errors[0]:.2e} | {errors[1]:.2e} | "
                         f"{BOUND} | {batch} | {speed(mine)} | {speed(theirs)} |")
        del family
        if args.device == "cuda":
            torch.cuda.empty_cache()
    with open(os.path.join(args.work, "summary.md"), "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
