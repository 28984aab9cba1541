"""CLIP's byte-level BPE, shared by the Python tools that build tokenizers and fixtures.

`bytes_to_unicode` is GPT-2's reversible byte -> printable-unicode map in CLIP's order; `bpe`
applies ranked merges to one byte-encoded piece, with `</w>` on its last symbol.
"""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map, in CLIP's order."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()


def encode_bytes(text):
    """The byte-encoded form of a piece of text (what `bpe` takes)."""
    return "".join(BYTE_ENCODER[b] for b in text.encode("utf-8"))


def bpe(piece, ranks, used=None):
    """CLIP's BPE on one byte-encoded piece; returns the symbols and records applied merges in `used`."""
    word = list(piece[:-1]) + [piece[-1] + "</w>"]
    while len(word) > 1:
        pairs = [(word[k], word[k + 1]) for k in range(len(word) - 1)]
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        if used is not None:
            used.add(best)
        first, second = best
        merged = []
        k = 0
        while k < len(word):
            if k < len(word) - 1 and word[k] == first and word[k + 1] == second:
                merged.append(first + second)
                k += 2
            else:
                merged.append(word[k])
                k += 1
        word = merged
    return word
