#!/usr/bin/env python3
"""Builds fixtures/tokenizers/: a tiny T5-format tokenizer and Python-made token-id vectors.

Run from the repository root in the tools environment (tools/python-env.sh):

    out/venv-tools/bin/python tools/make_tokenizer_vectors.py

Only transformers (4.57.6), tokenizers (0.22.1), sentencepiece (0.2.1) and protobuf are needed.
Deterministic: the same versions rebuild the same files byte for byte.

1. ``fixtures/tokenizers/t5-tiny/``: a SentencePiece unigram model (vocabulary 800, T5's layout:
   ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, no BOS, NFKC normalisation as T5's spiece.model), trained
   on the COCO captions of fixtures/coco/COCO-IT.csv and generated shapes-world captions, then
   converted and saved by transformers' ``T5TokenizerFast`` with 16 ``<extra_id_N>`` tokens (the real
   T5 has 100) and ``legacy=True`` (what the hub's T5 folders of SD3 and FLUX.1 say):
   tokenizer.json, tokenizer_config.json, special_tokens_map.json (the spiece.model it came from is
   not kept: the pipelines' T5TokenizerFast reads tokenizer.json).

2. ``fixtures/tokenizers/vectors.json``: for ~300 prompts, what the pipelines feed their encoders,
   called exactly as diffusers' pipelines call them
   (``tokenizer(prompt, padding="max_length", max_length=L, truncation=True)``):
   - ``clip_eot``: CLIPTokenizer (the slow, Python one the pipelines load) on fixtures/clip's
     vocab.json/merges.txt, padded to 77 with ``<|endoftext|>`` (SD 1.x; SDXL/SD3/FLUX's tokenizer);
   - ``clip_bang``: the same with pad token ``!`` (id 0): SD 2.x's tokenizer, SDXL's and SD3's
     tokenizer_2;
   - ``t5_256`` / ``t5_77``: T5TokenizerFast on t5-tiny at max_length 256 (SD3's default, FLUX
     schnell's) and 77; ``</s>`` kept at the end when truncated, padded with ``<pad>`` (0).
   Each entry also holds the untruncated token count (BOS/EOS included, as the pipelines' truncation
   warning counts them: ``tokenizer(prompt, padding="longest")``), the tokens as strings, and, from the
   fast tokenizers, character offsets (Python str indices = Unicode code points, end exclusive) and
   word ids of the untruncated encoding. CLIP offsets come from CLIPTokenizerFast on the same files:
   ``clip_fast_ids_equal`` says whether its ids equal the slow tokenizer's (they are what the
   pipelines use). ``tags`` say what a prompt tests; ``special`` prompts type a special token into
   the text (infodiff refuses those; the vectors say what transformers does with them).

ftfy is not installed (diffusers does not require it), so CLIPTokenizer cleans text with its
BasicTokenizer fallback, as in a plain diffusers environment; the file records that.
"""

import csv
import io
import json
import os
import random
import shutil
import sys

import sentencepiece as spm
import tokenizers
import transformers
from transformers import CLIPTokenizer, CLIPTokenizerFast, T5TokenizerFast

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CLIP_DIR = os.path.join(ROOT, "fixtures", "clip")
OUT_DIR = os.path.join(ROOT, "fixtures", "tokenizers")
T5_DIR = os.path.join(OUT_DIR, "t5-tiny")
T5_VOCAB = 800
T5_EXTRA_IDS = 16
CLIP_LENGTH = 77
T5_LENGTHS = (256, 77)

COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "pink"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "cross", "heart", "diamond"]
RELATIONS = ["to the left of", "to the right of", "above", "below", "next to", "inside", "behind"]
SIZES = ["small", "large", "tiny", "big", ""]


def coco_rows():
    """(caption, caption with the object word removed) of fixtures/coco/COCO-IT.csv, file order."""
    with open(os.path.join(ROOT, "fixtures", "coco", "COCO-IT.csv"), newline="", encoding="utf-8") as f:
        return [(row["correct_obj+context"], row["context"]) for row in csv.DictReader(f)]


def shapes_captions(rng, count):
    """Shapes-world captions: "a small red circle to the left of a blue square"."""
    out = []
    for _ in range(count):
        a = " ".join(w for w in ["a", rng.choice(SIZES), rng.choice(COLORS), rng.choice(SHAPES)] if w)
        b = " ".join(w for w in ["a", rng.choice(SIZES), rng.choice(COLORS), rng.choice(SHAPES)] if w)
        out.append(f"{a} {rng.choice(RELATIONS)} {b}")
    return out


def training_corpus():
    rng = random.Random(24)
    captions = sorted({c.strip() for c, _ in coco_rows() if c.strip()})
    return captions + shapes_captions(rng, 600)


def train_t5_tiny():
    """Trains the unigram model (one thread: deterministic) and saves it through T5TokenizerFast."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_corpus()),
        model_writer=model,
        model_type="unigram",
        vocab_size=T5_VOCAB,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        seed_sentencepiece_size=100000,
        minloglevel=2,
    )
    if os.path.isdir(T5_DIR):
        shutil.rmtree(T5_DIR)
    os.makedirs(T5_DIR)
    spiece = os.path.join(T5_DIR, "spiece.model")
    with open(spiece, "wb") as f:
        f.write(model.getvalue())
    # add_prefix_space=True is T5's "▁" before the first word ("a cat" -> ▁a ▁cat). Left at None,
    # transformers 4.57's converter reads the slow tokenizer's None as False and writes
    # prepend_scheme "never", so the first word would lose its ▁ (not what any T5 checkpoint does).
    tok = T5TokenizerFast(
        vocab_file=spiece, extra_ids=T5_EXTRA_IDS, legacy=True, add_prefix_space=True, from_slow=True
    )
    tok.model_max_length = 512
    tok.save_pretrained(T5_DIR, legacy_format=False)
    # The pipelines load tokenizer.json; the 250 kB SentencePiece model is not committed. Without
    # it, a config that still names add_prefix_space would make from_pretrained convert from the
    # slow tokenizer again and fail: the converted tokenizer.json already holds the choice.
    os.remove(spiece)
    config_path = os.path.join(T5_DIR, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config.pop("add_prefix_space", None)
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    # One load/save round trip gives the form every later save_pretrained writes byte for byte (the
    # scores printed from float32, T5TokenizerFast as class), so the T5 folders the diffusers
    # pipelines save (tiny-sd3's tokenizer_3, tiny-flux's tokenizer_2) are this very file.
    T5TokenizerFast.from_pretrained(T5_DIR).save_pretrained(T5_DIR)
    # Reload as the pipelines do (from the folder) so the vectors come from the saved files.
    return T5TokenizerFast.from_pretrained(T5_DIR)


def clip_tokenizers():
    vocab = os.path.join(CLIP_DIR, "vocab.json")
    merges = os.path.join(CLIP_DIR, "merges.txt")
    common = dict(model_max_length=CLIP_LENGTH, bos_token="<|startoftext|>", eos_token="<|endoftext|>")
    eot = CLIPTokenizer(vocab, merges, pad_token="<|endoftext|>", **common)
    bang = CLIPTokenizer(vocab, merges, pad_token="!", **common)
    fast = CLIPTokenizerFast(vocab_file=vocab, merges_file=merges, pad_token="<|endoftext|>", **common)
    return eot, bang, fast


def long_prompt(words, count):
    return " ".join(words[i % len(words)] for i in range(count))


def edge_prompts():
    """Hand-written prompts: (text, tags)."""
    sentence = "a small red circle to the left of a big blue square on a wooden table".split()
    prompts = [
        ("", ["empty"]),
        (" ", ["whitespace"]),
        ("a", ["short"]),
        ("cat", ["short"]),
        ("a photo of a cat", ["plain"]),
        ("A PHOTO OF A CAT", ["casing"]),
        ("A Photo Of A Cat", ["casing"]),
        ("a photo of a cat.", ["punctuation"]),
        ("cat,dog;bird:fish!?", ["punctuation"]),
        ("Hello,   WORLD!!  ", ["punctuation", "whitespace", "casing"]),
        ("...and then, suddenly -- a dog!", ["punctuation"]),
        ("a-b_c/d\\e", ["punctuation"]),
        ("#hashtag @mention $5 & 100% off", ["punctuation", "numbers"]),
        ("(maybe) [brackets] {braces} <angles>", ["punctuation"]),
        ("\"quoted\" and 'single' and `back`", ["punctuation"]),
        ("e-mail me: someone@example.com", ["punctuation"]),
        ("http://example.com/path?x=1&y=2", ["punctuation"]),
        ("3 apples and 12 oranges", ["numbers"]),
        ("1,000,000 stars in 2024", ["numbers"]),
        ("pi is 3.14159 and e is 2.71828", ["numbers"]),
        ("room 101, floor 42, 7th avenue", ["numbers"]),
        ("the man's hat isn't red", ["apostrophe"]),
        ("don't can't won't shouldn't y'all", ["apostrophe"]),
        ("café crème brûlée", ["unicode"]),
        ("naïve résumé façade", ["unicode"]),
        ("Ünïcödé ÅNGSTRÖM", ["unicode", "casing"]),
        ("ﬁne ﬂowers ① ½ ＡＢＣ", ["unicode", "nfkc"]),
        ("日本の猫", ["unicode", "cjk"]),
        ("a cat 🐱 and a dog 🐶", ["unicode", "emoji"]),
        ("Ωmega and αlpha and ßeta", ["unicode"]),
        ("привет мир", ["unicode"]),
        ("tab\tseparated\nnew line", ["whitespace"]),
        ("  leading and trailing  ", ["whitespace"]),
        ("double  spaced   words", ["whitespace"]),
        ("non\u00a0breaking\u2009thin space", ["whitespace", "unicode"]),
        ("dog dog dog dog dog", ["repeated"]),
        ("red red circle red", ["repeated"]),
        ("a cat and a cat and a cat", ["repeated"]),
        ("The the THE tHe", ["repeated", "casing"]),
        ("unbelievably photorealistic hyperdetailed masterpiece", ["rare-words"]),
        ("zxqv qwfp jjjj", ["rare-words"]),
        ("<|endoftext|>", ["special"]),
        ("a cat <|startoftext|> dog", ["special"]),
        ("<extra_id_0> cat", ["special"]),
        ("a cat</s> dog", ["special"]),
        ("<pad> <unk>", ["special"]),
    ]
    # Around CLIP's 77 (75 words + BOS + EOS fill it exactly) and T5's lengths (words + EOS).
    for n in (74, 75, 76, 80, 120):
        prompts.append((long_prompt(["a"], n), ["long", f"clip-boundary-{n}"]))
    for n in (76, 77, 78, 255, 256, 257, 300):
        prompts.append((long_prompt(["cat"], n), ["long", f"t5-boundary-{n}"]))
    for n in (60, 90, 200, 320):
        prompts.append((long_prompt(sentence, n), ["long"]))
    prompts.append((", ".join(["a red circle"] * 40), ["long", "repeated", "punctuation"]))
    return prompts


def corpus_prompts():
    """COCO captions (and their word-removed variants) and shapes captions: (text, tags)."""
    rows = coco_rows()
    step = len(rows) // 150
    picked = [rows[i * step] for i in range(150)]
    out = [(c, ["coco"]) for c, _ in picked]
    out += [(removed, ["coco", "word-removed"]) for _, removed in picked[:40]]
    out += [(c, ["shapes"]) for c in shapes_captions(random.Random(2024), 50)]
    return out


def padded(tok, text, length):
    return tok(text, padding="max_length", max_length=length, truncation=True)["input_ids"]


def untruncated(tok, text):
    return len(tok(text, padding="longest")["input_ids"])


def fast_detail(tok, text):
    enc = tok(text, return_offsets_mapping=True)
    return {
        "ids": enc["input_ids"],
        "tokens": enc.tokens(),
        "offsets": [list(o) for o in enc["offset_mapping"]],
        "word_ids": enc.word_ids(),
    }


def vector(text, tags, clip_eot, clip_bang, clip_fast, t5):
    clip_detail = fast_detail(clip_fast, text)
    clip_ids = clip_eot(text)["input_ids"]
    t5_detail = fast_detail(t5, text)
    return {
        "text": text,
        "tags": tags,
        "clip_eot": padded(clip_eot, text, CLIP_LENGTH),
        "clip_bang": padded(clip_bang, text, CLIP_LENGTH),
        "clip_untruncated": untruncated(clip_eot, text),
        "clip_tokens": clip_eot.convert_ids_to_tokens(clip_ids),
        "clip_offsets": clip_detail["offsets"],
        "clip_word_ids": clip_detail["word_ids"],
        "clip_fast_ids_equal": clip_detail["ids"] == clip_ids,
        "t5_256": padded(t5, text, 256),
        "t5_77": padded(t5, text, 77),
        "t5_untruncated": untruncated(t5, text),
        "t5_tokens": t5_detail["tokens"],
        "t5_offsets": t5_detail["offsets"],
        "t5_word_ids": t5_detail["word_ids"],
    }


def write_vectors(entries, clip_eot, clip_bang, t5):
    doc = {
        "generator": "tools/make_tokenizer_vectors.py",
        "versions": {
            "python": sys.version.split()[0],
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "sentencepiece": spm.__version__,
        },
        "ftfy": False,
        "clip": {
            "files": "fixtures/clip/vocab.json + merges.txt",
            "class": "CLIPTokenizer (slow)",
            "call": "tokenizer(text, padding='max_length', max_length=77, truncation=True)",
            "clip_eot_pad_id": clip_eot.pad_token_id,
            "clip_bang_pad_id": clip_bang.pad_token_id,
            "bos_id": clip_eot.bos_token_id,
            "eos_id": clip_eot.eos_token_id,
        },
        "t5": {
            "files": "fixtures/tokenizers/t5-tiny/tokenizer.json",
            "class": "T5TokenizerFast",
            "call": "tokenizer(text, padding='max_length', max_length=L, truncation=True, add_special_tokens=True)",
            "pad_id": t5.pad_token_id,
            "eos_id": t5.eos_token_id,
            "unk_id": t5.unk_token_id,
            "vocab_size": len(t5),
        },
        "fields": {
            "clip_untruncated": "token count of tokenizer(text, padding='longest'), BOS and EOS included",
            "*_offsets": "[start, end) of each token of the untruncated encoding in Python str indices (code points); [0, 0] for special tokens",
            "*_word_ids": "word index of each token of the untruncated encoding (null for special tokens)",
            "clip_offsets": "from CLIPTokenizerFast on the same files; clip_fast_ids_equal says whether its ids equal the slow ones",
        },
        "vectors": entries,
    }
    path = os.path.join(OUT_DIR, "vectors.json")
    with open(path, "w", encoding="utf-8") as f:
        # One line per vector keeps the file diffable and small.
        f.write("{\n")
        head = [k for k in doc if k != "vectors"]
        for k in head:
            f.write(f" {json.dumps(k)}: {json.dumps(doc[k], ensure_ascii=False)},\n")
        f.write(' "vectors": [\n')
        f.write(",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in entries))
        f.write("\n ]\n}\n")
    return path


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    t5 = train_t5_tiny()
    clip_eot, clip_bang, clip_fast = clip_tokenizers()
    prompts = edge_prompts() + corpus_prompts()
    entries = [vector(t, tags, clip_eot, clip_bang, clip_fast, t5) for t, tags in prompts]
    path = write_vectors(entries, clip_eot, clip_bang, t5)
    differing = sum(1 for e in entries if not e["clip_fast_ids_equal"])
    print(f"{len(entries)} vectors -> {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes);"
          f" CLIP fast ids differ from slow on {differing}")


if __name__ == "__main__":
    main()
