"""Train shapes-tiny: epsilon-prediction MSE on SD's scaled_linear 1000-step schedule.

Conditioning per sample: the null prompt "" (p_null), the full caption (p_full), or the caption
with one or two random words deleted at word boundaries (the rest) -- the contexts the SDK's
per-word conditional information evaluates. Every world word is one token, so deleting a word is
deleting its token. No horizontal flips (they would break "left of"/"right of").

AdamW, linear warm-up then cosine decay, EMA of the weights (the EMA is what gets exported).

Usage: python3 train.py --data DIR --tokenizer DIR --out DIR [--steps N] [--batch B] ...
Writes OUT/ema.npz, OUT/train_log.txt (and OUT/samples.png when --sample-grid).
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
from model import DEFAULT_CONFIG, ShapesTiny, count_parameters, scaled_linear_schedule  # noqa: E402
from tokenizer import ShapesTokenizer  # noqa: E402
from weights import save_npz  # noqa: E402


def load_dataset(folder, tok):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(folder, "captions.json")) as f:
        captions = json.load(f)
    n, size = int(meta["count"]), int(meta["size"])
    images = np.fromfile(os.path.join(folder, "images.u8"), dtype=np.uint8)
    assert images.size == n * size * size * 3, f"images.u8 has {images.size} bytes, expected {n}x{size}x{size}x3"
    assert len(captions) == n, f"{len(captions)} captions for {n} images"
    images = images.reshape(n, size, size, 3)
    max_words = tok.context_length - 2
    words = np.full((n, max_words), -1, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    for i, c in enumerate(captions):
        ids = tok.encode(c)[1:-1]
        assert len(ids) == len(c.split()), f"caption {c!r}: a word is not one token ({ids})"
        assert len(ids) <= max_words, f"caption {c!r} has {len(ids)} tokens > {max_words}"
        words[i, :len(ids)] = ids
        lengths[i] = len(ids)
    return meta, images, captions, words, lengths


def make_conditions(words, lengths, tok, p_null, p_full, gen):
    """input_ids [B, L] for a batch: null / full / one-or-two-words-deleted captions."""
    b, w = words.shape
    device = words.device
    u = torch.rand(b, generator=gen, device=device)
    valid = torch.arange(w, device=device)[None, :] < lengths[:, None]
    k = torch.randint(1, 3, (b,), generator=gen, device=device)
    k = torch.minimum(k, (lengths - 1).clamp(min=0))
    scores = torch.rand(b, w, generator=gen, device=device).masked_fill(~valid, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)  # rank of each position among the row's scores
    deleted = rank < k[:, None]
    is_null = u < p_null
    is_partial = u >= p_null + p_full
    keep = valid & ~(deleted & is_partial[:, None]) & ~is_null[:, None]
    L = tok.context_length
    ids = torch.full((b, L + 1), tok.pad_id, dtype=torch.long, device=device)
    ids[:, 0] = tok.bos_id
    pos = keep.long().cumsum(dim=1)  # BOS sits at 0, the j-th kept word at j
    dummy = torch.full_like(pos, L)
    ids.scatter_(1, torch.where(keep, pos, dummy), torch.where(keep, words, torch.full_like(words, tok.pad_id)))
    count = keep.sum(dim=1)
    ids.scatter_(1, (count + 1)[:, None], torch.full((b, 1), tok.eos_id, dtype=torch.long, device=device))
    return ids[:, :L]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--max-minutes", type=float, default=1e9, help="stop early (and still save)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-null", type=float, default=0.15)
    ap.add_argument("--p-full", type=float, default=0.45)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--sample-grid", action="store_true")
    ap.add_argument("--eval-size", type=int, default=2048)
    ap.add_argument("--config", default="{}", help="JSON overrides of the model config")
    ap.add_argument("--init", help="start from these weights (.npz, e.g. an earlier run's EMA)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "train_log.txt"), "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = ShapesTokenizer(args.tokenizer)
    meta, images_u8, captions, words_np, lengths_np = load_dataset(args.data, tok)
    cfg = dict(DEFAULT_CONFIG)
    cfg.update({"vocab_size": len(tok.encoder), "context_length": tok.context_length, "eos_id": tok.eos_id})
    cfg.update(json.loads(args.config))
    model = ShapesTiny(cfg).to(device)
    if args.init:
        from weights import load_npz
        init_cfg, init_state = load_npz(args.init)
        assert init_cfg == cfg, f"--init config {init_cfg} differs from {cfg}"
        model.load_state_dict(init_state)
    ema = ShapesTiny(cfg).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    n_params = count_parameters(model)
    say(f"device {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'} torch {torch.__version__}")
    say(f"data {args.data}: {len(captions)} images, meta {json.dumps(meta)}")
    say(f"params total {n_params} (text encoder {count_parameters(model.text_encoder)}, "
        f"unet {count_parameters(model.unet)}); config {json.dumps(cfg)}")
    say(f"args {json.dumps(vars(args))}")

    images = torch.from_numpy(images_u8).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    words = torch.from_numpy(words_np).to(device)
    lengths = torch.from_numpy(lengths_np).to(device)
    _, alphas_cumprod = scaled_linear_schedule()
    sqrt_ab = alphas_cumprod.sqrt().float().to(device)
    sqrt_1mab = (1 - alphas_cumprod).sqrt().float().to(device)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name or "embedding" in name else decay).append(p)
    opt_kwargs = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999), **opt_kwargs)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def loss_fn(x0, t, ids, noise):
        xt = sqrt_ab[t][:, None, None, None] * x0 + sqrt_1mab[t][:, None, None, None] * noise
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = model(xt, t, ids)
        return (pred.float() - noise).pow(2).mean()

    step_fn = torch.compile(loss_fn) if args.compile else loss_fn
    gen = torch.Generator(device=device).manual_seed(args.seed)
    ema_params = list(ema.parameters())
    model_params = list(model.parameters())
    start = time.time()
    running, count = 0.0, 0
    step = 0
    losses = []
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        idx = torch.randint(0, images.shape[0], (args.batch,), generator=gen, device=device)
        t = torch.randint(0, 1000, (args.batch,), generator=gen, device=device)
        noise = torch.randn(args.batch, 3, 32, 32, generator=gen, device=device)
        ids = make_conditions(words[idx], lengths[idx], tok, args.p_null, args.p_full, gen)
        loss = step_fn(images[idx], t, ids, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model_params, 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            if hasattr(torch, "_foreach_lerp_"):
                torch._foreach_lerp_(ema_params, model_params, 1 - d)
            else:  # torch 1.13 (CPU fallback)
                for e, p in zip(ema_params, model_params):
                    e.lerp_(p, 1 - d)
        running += loss.detach()
        count += 1
        if (step + 1) % args.log_every == 0 or step == args.steps - 1:
            avg = float(running) / count
            losses.append((step + 1, avg))
            elapsed = time.time() - start
            say(f"step {step + 1} loss {avg:.5f} lr {lr_at(step):.2e} elapsed {elapsed:.1f}s "
                f"rate {(step + 1) / elapsed:.2f} it/s")
            running, count = 0.0, 0
            if elapsed > args.max_minutes * 60:
                say(f"stopping early at step {step + 1}: time budget of {args.max_minutes} min reached")
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.time() - start
    steps_done = step + 1
    # EMA model's loss on a fixed batch of fresh noise, full captions and null prompts
    with torch.no_grad():
        g2 = torch.Generator(device=device).manual_seed(1234)
        idx = torch.randint(0, images.shape[0], (args.eval_size,), generator=g2, device=device)
        t = torch.randint(0, 1000, (args.eval_size,), generator=g2, device=device)
        noise = torch.randn(args.eval_size, 3, 32, 32, generator=g2, device=device)
        x0 = images[idx]
        xt = sqrt_ab[t][:, None, None, None] * x0 + sqrt_1mab[t][:, None, None, None] * noise
        full = make_conditions(words[idx], lengths[idx], tok, 0.0, 1.0, g2)
        null = make_conditions(words[idx], lengths[idx], tok, 1.0, 0.0, g2)
        ema.eval()
        l_full = float((ema(xt, t, full) - noise).pow(2).mean())
        l_null = float((ema(xt, t, null) - noise).pow(2).mean())
    say(f"done: {steps_done} steps in {elapsed:.1f}s ({steps_done / elapsed:.2f} it/s), "
        f"batch {args.batch}, samples seen {steps_done * args.batch}")
    say(f"EMA eval loss ({args.eval_size} fixed draws, fp32): full caption {l_full:.5f}, null prompt {l_null:.5f}")
    extra = {"steps": steps_done, "seconds": elapsed, "batch": args.batch, "final_train_loss": losses[-1][1],
             "ema_eval_loss_full": l_full, "ema_eval_loss_null": l_null, "params": n_params,
             "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
             "torch": torch.__version__, "data_meta": meta, "args": vars(args)}
    save_npz(os.path.join(args.out, "ema.npz"), cfg, ema.state_dict(), extra)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(extra, f, indent=1)
    say("saved ema.npz")
    if args.sample_grid:
        from sample import PROMPTS, ddim_sample, save_grid
        ids = torch.tensor([tok.input_ids(p) for p in PROMPTS for _ in range(6)], device=device)
        null = torch.tensor([tok.input_ids("")], device=device)
        with torch.no_grad():
            for guidance in (1.0, 3.0):
                x = ddim_sample(ema, ids, 50, guidance, seed=0, null_ids=null)
                save_grid([x[i * 6:(i + 1) * 6] for i in range(len(PROMPTS))],
                          os.path.join(args.out, f"samples_g{guidance:g}.png"))
        say(f"sample grids written; rows: {PROMPTS}")


if __name__ == "__main__":
    main()
