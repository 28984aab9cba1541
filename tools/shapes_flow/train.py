"""Train shapes-flow: rectified flow (FLUX.1's objective) on shapes-world scenes.

x_t = (1 − t)·x + t·ε on the exact latent packed 2×2 (model.py), the transformer predicts the
velocity v = ε − x, loss MSE; t is logit-normal(0, 1) (SD 3 / FLUX.1 training) with a uniform
share (--uniform-share) so the ends of the schedule are trained too.

Conditioning per sample, as shapes-tiny's train.py: the null prompt "" (--p-null), the full
caption (--p-full), otherwise the caption with 1 or 2 random words deleted at word boundaries —
the prompts infodiff's per-word conditional information evaluates. Every world word is one token
in both tokenizers, so a deleted word is a deleted token; the ids are built per word and checked
against transformers' own tokenizers at start-up.

AdamW, linear warm-up, then cosine decay to 5 % driven by the training's progress: the larger of
step/--steps and elapsed/--max-minutes (so a CPU run that must stop at a time still ends its
schedule; the log says which). EMA of the weights (what gets exported).

Resumable: OUT/checkpoint.pt (weights, EMA, optimizer, step, elapsed seconds, generator state) is
written every --checkpoint-minutes and at the end, and --resume continues from it (on another
machine too: it is loaded to the device in use). OUT/ema.pt holds the EMA weights alone.

--init EMA_PT starts a new run (fresh optimizer, schedule and generator) from an earlier run's EMA
weights: a longer run continued without its learning rate rising again mid-schedule.

Usage: python tools/shapes_flow/train.py --data DIR [DIR...] --tokenizers DIR --out DIR
         [--steps N] [--max-minutes M] [--batch B] [--lr LR] [--resume | --init EMA_PT]
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import CLIP_LENGTH, T5_LENGTH, ShapesFlow, pack, to_latent  # noqa: E402
from transformers import CLIPTokenizer, T5TokenizerFast  # noqa: E402


class WordIds:
    """Per-word ids of both tokenizers, so conditions are built on the word level."""

    def __init__(self, folder, vocabulary):
        self.clip = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
        self.t5 = T5TokenizerFast.from_pretrained(os.path.join(folder, "tokenizer_2"))
        self.words = list(vocabulary)
        self.clip_of = torch.tensor([self._one(self.clip, w, 1) for w in self.words])
        self.t5_of = torch.tensor([self._one(self.t5, w, 0) for w in self.words])
        self.bos, self.eos = self.clip.bos_token_id, self.clip.eos_token_id
        self.clip_pad = self.clip.pad_token_id
        self.t5_eos, self.t5_pad = self.t5.eos_token_id, self.t5.pad_token_id

    @staticmethod
    def _one(tok, word, at):
        ids = tok(word).input_ids
        assert len(ids) == at + 2, f"{word!r} is not one token: {ids}"
        return ids[at]

    def index(self, caption):
        return [self.words.index(w) for w in caption.split()]

    def ids(self, words, keep):
        """words [B, W] word indices (−1 = none), keep [B, W] → (clip_ids [B, 20], t5_ids [B, 16])."""
        b, w = words.shape
        kept = keep & (words >= 0)
        count = kept.sum(1)
        order = torch.argsort((~kept).int(), dim=1, stable=True)  # kept words first, in order
        idx = torch.gather(words.clamp(min=0), 1, order)
        pos = torch.arange(w)[None, :]
        live = pos < count[:, None]
        clip = torch.full((b, CLIP_LENGTH), self.clip_pad, dtype=torch.long)
        clip[:, 0] = self.bos
        clip[:, 1:w + 1] = torch.where(live, self.clip_of[idx], self.clip_pad)[:, :CLIP_LENGTH - 1]
        clip.scatter_(1, (count + 1)[:, None], self.eos)
        t5 = torch.full((b, T5_LENGTH), self.t5_pad, dtype=torch.long)
        t5[:, :w] = torch.where(live, self.t5_of[idx], self.t5_pad)[:, :T5_LENGTH]
        t5.scatter_(1, count[:, None], self.t5_eos)
        return clip, t5

    def check(self, captions):
        """The per-word ids equal the tokenizers' own (padding="max_length") on these prompts."""
        words = torch.full((len(captions), T5_LENGTH - 1), -1, dtype=torch.long)
        for i, c in enumerate(captions):
            idx = self.index(c)
            words[i, :len(idx)] = torch.tensor(idx, dtype=torch.long)
        clip, t5 = self.ids(words, torch.ones_like(words, dtype=torch.bool))
        for i, c in enumerate(captions):
            want_clip = self.clip(c, padding="max_length", max_length=CLIP_LENGTH, truncation=True).input_ids
            want_t5 = self.t5(c, padding="max_length", max_length=T5_LENGTH, truncation=True).input_ids
            assert clip[i].tolist() == want_clip, (c, clip[i].tolist(), want_clip)
            assert t5[i].tolist() == want_t5, (c, t5[i].tolist(), want_t5)


def load_data(folders, word_ids):
    images, words = [], []
    for folder in folders:
        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(folder, "captions.json")) as f:
            captions = json.load(f)
        n, size = int(meta["count"]), int(meta["size"])
        assert size == 32 and len(captions) == n, f"{folder}: {n} rows of {size} px, {len(captions)} captions"
        pixels = np.fromfile(os.path.join(folder, "images.u8"), dtype=np.uint8)
        images.append(torch.from_numpy(pixels.reshape(n, size, size, 3)))
        w = torch.full((n, T5_LENGTH - 1), -1, dtype=torch.long)
        for i, c in enumerate(captions):
            idx = word_ids.index(c)
            assert len(idx) <= T5_LENGTH - 1, f"{c!r}: {len(idx)} words"
            w[i, :len(idx)] = torch.tensor(idx, dtype=torch.long)
        words.append(w)
    return torch.cat(images), torch.cat(words)


def condition_keep(words, p_null, p_full, gen):
    """keep [B, W]: null prompt, full caption, or 1–2 words deleted (shapes-tiny's train.py)."""
    b, w = words.shape
    valid = words >= 0
    lengths = valid.sum(1)
    u = torch.rand(b, generator=gen)
    k = torch.randint(1, 3, (b,), generator=gen)
    k = torch.minimum(k, (lengths - 1).clamp(min=0))
    scores = torch.rand(b, w, generator=gen).masked_fill(~valid, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    deleted = rank < k[:, None]
    is_null = u < p_null
    is_partial = u >= p_null + p_full
    return valid & ~(deleted & is_partial[:, None]) & ~is_null[:, None]


def sample_t(b, uniform_share, gen, logit_mean=0.0):
    logit = torch.sigmoid(logit_mean + torch.randn(b, generator=gen))
    uniform = torch.rand(b, generator=gen)
    return torch.where(torch.rand(b, generator=gen) < uniform_share, uniform, logit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--tokenizers", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--max-minutes", type=float, default=1e9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-null", type=float, default=0.1)
    ap.add_argument("--p-full", type=float, default=0.5)
    ap.add_argument("--uniform-share", type=float, default=0.2)
    ap.add_argument("--logit-mean", type=float, default=0.0,
                    help="mean of the logit-normal t law (SD 3's m; > 0 trains more at high noise)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start a fresh schedule from these EMA weights (an ema.pt)")
    ap.add_argument("--t5-init", help="T5 weights from pretrain_t5.py (after --init, replacing its T5)")
    ap.add_argument("--freeze-t5", action="store_true", help="keep T5's weights fixed, as FLUX.1 does")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log = open(os.path.join(args.out, "train_log.txt"), "a")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    with open(os.path.join(args.data[0], "vocabulary.json")) as f:
        vocabulary = json.load(f)
    word_ids = WordIds(args.tokenizers, vocabulary)
    images_u8, words = load_data(args.data, word_ids)
    torch.manual_seed(args.seed)
    model = ShapesFlow(len(word_ids.clip), len(word_ids.t5), seed=args.seed).to(device)
    ema = ShapesFlow(len(word_ids.clip), len(word_ids.t5), seed=args.seed).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    if args.freeze_t5:
        model.t5.requires_grad_(False)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name or "embed" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["opt"])
        gen.set_state(ckpt["generator"])
        step, elapsed_before = ckpt["step"], ckpt["elapsed"]
        say(f"resumed from {ckpt_path} at step {step} ({elapsed_before:.0f} s trained)")
    else:
        if args.init:  # a new run (schedule, optimizer, generator) from an earlier run's EMA
            weights = torch.load(args.init, map_location=device, weights_only=False)["ema"]
            model.load_state_dict(weights)
            ema.load_state_dict(weights)
        if args.t5_init:  # a pretrained text encoder, as FLUX.1's T5 is
            t5_weights = torch.load(args.t5_init, map_location=device, weights_only=False)["t5"]
            model.t5.load_state_dict(t5_weights)
            ema.t5.load_state_dict(t5_weights)
        checks = ["", "a red circle", "a small blue square left of a large yellow triangle and a green circle"]
        word_ids.check(checks)
        counts = {n: sum(p.numel() for p in part.parameters())
                  for n, part in (("transformer", model.transformer), ("clip", model.clip), ("t5", model.t5))}
        say(f"device {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'} torch {torch.__version__}"
            f" threads {torch.get_num_threads()}")
        say(f"data {args.data}: {len(words)} rows; parameters {counts} (total {sum(counts.values())})")
        say(f"args {json.dumps(vars(args))}")

    def progress(step, elapsed):
        return max(step / args.steps, elapsed / (args.max_minutes * 60))

    def lr_at(step, elapsed):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = min(1.0, progress(step, elapsed))
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    def save(path_ckpt):
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "generator": gen.get_state(), "step": step, "elapsed": elapsed,
                    "args": vars(args)}, path_ckpt + ".tmp")
        os.replace(path_ckpt + ".tmp", path_ckpt)
        torch.save({"ema": ema.state_dict(), "step": step, "clip_vocab": len(word_ids.clip),
                    "t5_vocab": len(word_ids.t5)}, os.path.join(args.out, "ema.pt"))

    model_params, ema_params = list(model.parameters()), list(ema.parameters())
    start = time.time()
    last_ckpt = start
    running, count, elapsed = 0.0, 0, elapsed_before
    n = len(words)
    while step < args.steps:
        elapsed = elapsed_before + time.time() - start
        if progress(step, elapsed) >= 1.0:
            say(f"stopping at step {step}: the time budget of {args.max_minutes} min is spent")
            break
        lr = lr_at(step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, n, (args.batch,), generator=gen)
        x = images_u8[idx].permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        x0 = pack(to_latent(x)).to(device)
        eps = torch.randn(x0.shape, generator=gen).to(device)
        t = sample_t(args.batch, args.uniform_share, gen, args.logit_mean).to(device)
        clip_ids, t5_ids = word_ids.ids(words[idx], condition_keep(words[idx], args.p_null, args.p_full, gen))
        xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * eps
        v = model(xt, t, clip_ids.to(device), t5_ids.to(device))
        loss = (v.float() - (eps - x0)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model_params, 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, model_params, 1 - d)
        step += 1
        running += float(loss.detach())
        count += 1
        if step % args.log_every == 0:
            elapsed = elapsed_before + time.time() - start
            say(f"step {step} loss {running / count:.5f} lr {lr:.2e} elapsed {elapsed:.0f}s "
                f"samples {step * args.batch} rate {step * args.batch / max(elapsed, 1e-9):.0f}/s")
            running, count = 0.0, 0
        if time.time() - last_ckpt > args.checkpoint_minutes * 60:
            save(ckpt_path)
            last_ckpt = time.time()
    elapsed = elapsed_before + time.time() - start
    save(ckpt_path)
    with torch.no_grad():  # the EMA's loss on 256 fixed draws: full captions and the null prompt
        g2 = torch.Generator().manual_seed(1234)
        idx = torch.randint(0, n, (256,), generator=g2)
        x0 = pack(to_latent(images_u8[idx].permute(0, 3, 1, 2).float().div(127.5).sub(1.0))).to(device)
        eps = torch.randn(x0.shape, generator=g2).to(device)
        t = sample_t(256, args.uniform_share, g2).to(device)
        xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * eps
        losses = {}
        for name, (p_null, p_full) in (("full caption", (0.0, 1.0)), ("null prompt", (1.0, 0.0))):
            c, t5 = word_ids.ids(words[idx], condition_keep(words[idx], p_null, p_full, g2))
            losses[name] = float((ema(xt, t, c.to(device), t5.to(device)) - (eps - x0)).pow(2).mean())
    say(f"done: {step} steps, {step * args.batch} samples in {elapsed:.0f}s; EMA loss on 256 fixed draws: "
        + ", ".join(f"{k} {v:.5f}" for k, v in losses.items()))


if __name__ == "__main__":
    main()
