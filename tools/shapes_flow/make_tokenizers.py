"""shapes-flow's two tokenizers, one token per world word in each.

- tokenizer/ (CLIP, for the pooled vector): tools/shapes_tiny/tokenizer.py's CLIP-format BPE,
  context length 20, padded with <|endoftext|> (which is the largest id, so CLIP's legacy argmax
  pooling finds the first EOS).
- tokenizer_2/ (T5): a SentencePiece unigram model trained on the world's captions, T5's layout
  (<pad> = 0, </s> = 1, <unk> = 2, no BOS, NFKC), saved through transformers' T5TokenizerFast as
  tools/make_tokenizer_vectors.py saves fixtures/tokenizers/t5-tiny; model_max_length 16 (the
  longest caption is 15 words + </s>).

Usage: out/venv-tools/bin/python tools/shapes_flow/make_tokenizers.py DATA_DIR... --out DIR
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys

import sentencepiece as spm
from transformers import CLIPTokenizer, T5TokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
T5_LENGTH = 16
CLIP_LENGTH = 20


def captions_of(folders):
    out = []
    for folder in folders:
        with open(os.path.join(folder, "captions.json")) as f:
            out += json.load(f)
    return out


def build_t5(captions, vocabulary, folder):
    """Unigram model whose pieces hold every world word whole (▁word), saved as tokenizer.json."""
    model = io.BytesIO()
    # a deterministic corpus: each distinct caption once, sorted; every word also alone
    corpus = sorted(set(captions)) + list(vocabulary)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, model_type="unigram",
        vocab_size=len(vocabulary) + 32, hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", character_coverage=1.0,
        normalization_rule_name="nmt_nfkc", num_threads=1, minloglevel=2,
    )
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    spiece = os.path.join(folder, "spiece.model")
    with open(spiece, "wb") as f:
        f.write(model.getvalue())
    tok = T5TokenizerFast(vocab_file=spiece, extra_ids=0, legacy=True, add_prefix_space=True, from_slow=True)
    tok.model_max_length = T5_LENGTH
    tok.save_pretrained(folder, legacy_format=False)
    os.remove(spiece)
    path = os.path.join(folder, "tokenizer_config.json")
    with open(path) as f:
        config = json.load(f)
    config.pop("add_prefix_space", None)
    with open(path, "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    T5TokenizerFast.from_pretrained(folder).save_pretrained(folder)
    tok = T5TokenizerFast.from_pretrained(folder)
    for word in vocabulary:
        ids = tok(word).input_ids
        assert len(ids) == 2, f"T5: {word!r} is not one token: {tok.convert_ids_to_tokens(ids)}"
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(os.path.join(args.data[0], "vocabulary.json")) as f:
        vocabulary = json.load(f)
    clip_dir = os.path.join(args.out, "tokenizer")
    subprocess.run([sys.executable, os.path.join(HERE, "..", "shapes_tiny", "tokenizer.py"),
                    os.path.join(args.data[0], "vocabulary.json"), clip_dir,
                    "--context-length", str(CLIP_LENGTH)], check=True)
    clip = CLIPTokenizer.from_pretrained(clip_dir)
    t5 = build_t5(captions_of(args.data), vocabulary, os.path.join(args.out, "tokenizer_2"))
    print(f"CLIP: {len(clip)} ids, max length {clip.model_max_length}; T5: {len(t5)} ids, "
          f"max length {t5.model_max_length}")


if __name__ == "__main__":
    main()
