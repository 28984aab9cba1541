"""Pretrains shapes-flow's T5 encoder on the training captions as a masked language model.

Why: trained from scratch jointly with the transformer, the tiny T5 settled on word states that do
not depend on word order (swapping "a red circle left of a blue square" for "a blue square left
of a red circle" changed the transformer's velocity by < 1e-4 of a word's effect), and FLUX's
joint attention, with every text id zero, reads its text tokens as a set: the model could not
learn which object a relation word puts where. FLUX.1 and SD 3 take a T5 pretrained on text; this
gives ours that step. A state that predicts a masked word must say where in the caption it stands
(which noun phrase, before or after the relation word) — what the transformer needs.

Objective: BERT-style masking on the word ids train.py builds (every world word one T5 piece):
15 % of the words (at least one per caption) replaced by <unk>, cross-entropy on them through a
linear head that is dropped afterwards. Writes OUT (a torch file {"t5": state_dict}) for
train.py --t5-init.

Usage: python tools/shapes_flow/pretrain_t5.py --data DIR [DIR...] --tokenizers DIR --out FILE
         [--steps N] [--batch B] [--lr LR] [--seed S]
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import build_parts  # noqa: E402
from train import WordIds, load_data  # noqa: E402


SIDES = {"left": ("left", "right"), "right": ("right", "left"), "above": ("above", "below"),
         "below": ("below", "above")}
ROLE_IDS = {"none": 0, "left": 1, "right": 2, "above": 3, "below": 4}


def role_labels(words, vocabulary):
    """[N, W] word indices → [N, W] side labels: where each word's object lies, as the caption's
    relation says ("a red circle left of a blue square": red, circle → left; blue, square → right;
    a third object after "and", single objects and the function words → none)."""
    labels = torch.zeros_like(words)
    for i, row in enumerate(words.tolist()):
        caption = [vocabulary[w] for w in row if w >= 0]
        at = next((k for k, w in enumerate(caption) if w in SIDES), None)
        if at is None:
            continue
        first, second = SIDES[caption[at]]
        end = caption.index("and") if "and" in caption else len(caption)
        for k, w in enumerate(caption[:end]):
            if w in ("a", "of") or w in SIDES:
                continue
            labels[i, k] = ROLE_IDS[first if k < at else second]
    return labels


def masked(t5_ids, words, share, unk, gen):
    """(inputs, targets): `share` of each caption's words (at least one) replaced by <unk>."""
    valid = words >= 0
    scores = torch.rand(words.shape, generator=gen).masked_fill(~valid, 2.0)
    k = (valid.sum(1).float() * share).ceil().clamp(min=1).long()
    chosen = scores.argsort(1).argsort(1) < k[:, None]
    pick = torch.zeros_like(t5_ids, dtype=torch.bool)
    pick[:, :words.shape[1]] = chosen & valid
    return t5_ids.masked_fill(pick, unk), torch.where(pick, t5_ids, torch.full_like(t5_ids, -100))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--tokenizers", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--share", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--roles", action="store_true",
                    help="also tag each word with its object's side (a second head, summed loss)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.data[0], "vocabulary.json")) as f:
        vocabulary = json.load(f)
    word_ids = WordIds(args.tokenizers, vocabulary)
    _, words = load_data(args.data, word_ids)
    roles = role_labels(words, vocabulary)
    _, _, t5 = build_parts(len(word_ids.clip), len(word_ids.t5), args.seed)
    head = torch.nn.Linear(t5.config.d_model, len(word_ids.t5))
    role_head = torch.nn.Linear(t5.config.d_model, len(ROLE_IDS))
    params = list(t5.parameters()) + list(head.parameters()) + list(role_head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed)
    unk = word_ids.t5.unk_token_id
    every = torch.ones_like(words, dtype=torch.bool)
    for step in range(1, args.steps + 1):
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, step / 100) * (0.05 + 0.95 * (1 - step / args.steps))
        idx = torch.randint(0, len(words), (args.batch,), generator=gen)
        _, ids = word_ids.ids(words[idx], every[idx])
        inputs, targets = masked(ids, words[idx], args.share, unk, gen)
        states = t5(inputs).last_hidden_state
        logits = head(states)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        if args.roles:  # on the words left unmasked
            want = torch.full_like(ids, -100)
            want[:, :words.shape[1]] = torch.where(words[idx] >= 0, roles[idx], -100)
            want = want.masked_fill(inputs == unk, -100)
            role_logits = role_head(states)
            role_loss = torch.nn.functional.cross_entropy(role_logits.flatten(0, 1), want.flatten())
            loss = loss + role_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == args.steps:
            hit = (logits.detach().argmax(-1) == targets)[targets >= 0].float().mean()
            roles_hit = ""
            if args.roles:
                right = (role_logits.detach().argmax(-1) == want)[want >= 0].float().mean()
                roles_hit = f" side accuracy {float(right):.3f}"
            print(f"step {step} loss {loss.item():.4f} masked-word accuracy {float(hit):.3f}{roles_hit}", flush=True)
    torch.save({"t5": t5.state_dict(), "args": vars(args)}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
