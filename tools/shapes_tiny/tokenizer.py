"""CLIP-format BPE tokenizer for the shapes world's closed vocabulary.

Builds a Hugging Face `CLIPTokenizer` folder (vocab.json, merges.txt, special_tokens_map.json,
tokenizer_config.json) in which every world word is exactly one token `word</w>`, and tokenises
text with CLIP's own algorithm (lower-case, whitespace collapse, regex split, byte-level BPE with
`</w>` on a word's last piece). The SDK's TypeScript tokenizer reads the same files and must give
the same ids; `tokenizer_vectors.json` pins them.

Usage: python3 tokenizer.py VOCABULARY_JSON OUT_DIR [--context-length N] [--vectors FILE]
"""

import argparse
import json
import os
import sys
import unicodedata

# The shared CLIP BPE lives one folder up (tools/clip_bpe.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from clip_bpe import BYTE_ENCODER, bpe, encode_bytes  # noqa: E402

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"




def _is_letter(ch):
    return unicodedata.category(ch).startswith("L")


def _is_number(ch):
    return unicodedata.category(ch).startswith("N")


def split_pieces(text):
    """CLIP's regex split, written out by hand (the `regex` module is not available here):
    <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"""
    pieces = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        matched = None
        for special in (BOS, EOS, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
            if text.startswith(special, i):
                matched = special
                break
        if matched is None:
            j = i + 1
            if _is_letter(ch):
                while j < n and _is_letter(text[j]):
                    j += 1
            elif not _is_number(ch):
                while j < n and not (text[j].isspace() or _is_letter(text[j]) or _is_number(text[j])):
                    j += 1
            matched = text[i:j]
        pieces.append(matched)
        i += len(matched)
    return pieces


def clean(text):
    """Lower-case and collapse whitespace, as CLIP does."""
    return " ".join(text.split()).lower()


def build_merges(words):
    """Merges so that CLIP's BPE turns every word into one symbol. Each word is simulated with the
    merges so far; while it ends in several symbols, the merge of its first two is appended. An
    appended merge ranks below all earlier ones, so it never changes a word already finished."""
    merges = []
    ranks = {}
    for word in words:
        piece = encode_bytes(word)
        while True:
            symbols = bpe(piece, ranks)
            if len(symbols) == 1:
                break
            pair = (symbols[0], symbols[1])
            ranks[pair] = len(merges)
            merges.append(pair)
    return merges


class ShapesTokenizer:
    """Tokeniser reading a folder written by `build_tokenizer` (the CLIP algorithm)."""

    def __init__(self, folder):
        with open(os.path.join(folder, "vocab.json")) as f:
            self.encoder = json.load(f)
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        assert lines[0].startswith("#version")
        pairs = [tuple(line.split()) for line in lines[1:] if line.strip()]
        self.ranks = {p: r for r, p in enumerate(pairs)}
        with open(os.path.join(folder, "tokenizer_config.json")) as f:
            config = json.load(f)
        self.context_length = int(config["model_max_length"])
        self.bos_id = self.encoder[BOS]
        self.eos_id = self.encoder[EOS]
        self.pad_id = self.encoder[config.get("pad_token", EOS)]

    def encode(self, text):
        """Ids from BOS to EOS inclusive, no padding; cut to context_length like CLIP."""
        ids = []
        for piece in split_pieces(clean(text)):
            if piece in (BOS, EOS):
                ids.append(self.encoder[piece])
                continue
            encoded = encode_bytes(piece)
            ids.extend(self.encoder[s] for s in bpe(encoded, self.ranks))
        ids = ids[: self.context_length - 2]
        return [self.bos_id] + ids + [self.eos_id]

    def input_ids(self, text):
        """`encode` padded with pad_id to context_length (SD 1.x style)."""
        ids = self.encode(text)
        return ids + [self.pad_id] * (self.context_length - len(ids))


def build_tokenizer(words, out_dir, context_length):
    """Write vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json."""
    words = sorted(set(clean(w) for w in words))
    for w in words:
        assert split_pieces(w) == [w], f"vocabulary entry {w!r} is not a single CLIP word"
    merges = build_merges(words)
    symbols = list(BYTE_ENCODER.values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    for a, b in merges:
        vocab_list.append(a + b)
    vocab_list += [BOS, EOS]
    assert len(set(vocab_list)) == len(vocab_list)
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    config = dict(special)
    config.update({
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": context_length,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
    })
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tok = ShapesTokenizer(out_dir)
    for w in words:
        ids = tok.encode(w)
        assert ids == [tok.bos_id, vocab[w + "</w>"], tok.eos_id], (w, ids)
    return tok


VECTOR_PROMPTS = [
    "a red circle",
    "a small green triangle above a yellow circle",
    "a red circle left of a blue square",
    "A Large  BLUE square right of a small yellow triangle and a green circle",
    "",
    "red",
    "a circle",
    "a red circle below a blue",
    "a purple circle",  # unknown word: byte/merge pieces
    "two circles, 3 squares!",
]


def write_vectors(tok, path):
    """Prompt -> ids (BOS..EOS, no padding) vectors for the TypeScript tokenizer's tests."""
    vectors = [{"text": p, "ids": tok.encode(p)} for p in VECTOR_PROMPTS]
    with open(path, "w") as f:
        json.dump(vectors, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocabulary")
    ap.add_argument("out_dir")
    ap.add_argument("--context-length", type=int, default=16)
    ap.add_argument("--vectors")
    args = ap.parse_args()
    with open(args.vocabulary) as f:
        words = json.load(f)
    tok = build_tokenizer(words, args.out_dir, args.context_length)
    print(f"vocab size {len(tok.encoder)}, merges {len(tok.ranks)}, bos {tok.bos_id}, eos {tok.eos_id}")
    if args.vectors:
        write_vectors(tok, args.vectors)


if __name__ == "__main__":
    main()
