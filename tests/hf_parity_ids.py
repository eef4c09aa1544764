#!/usr/bin/env python3
"""hf_parity_ids.py - the expected token ids, from Hugging Face tokenizers.

  hf_parity_ids.py VOCAB [CORPUS.jsonl OUT_IDS] [--codepoints OUT_TSV] [--ccc-pairs OUT_TXT]

Runs where `tokenizers` is installed (the device machine; not needed by
`make test`, which reads the committed results).  CORPUS is the JSON Lines
file of tests/gen_parity_corpus.py (plain, or .zst when the zstandard module
is there).  Each line is read as bytes, decoded as UTF-8 with every invalid
sequence replaced by U+FFFD (the normaliser drops U+FFFD, so this equals
bin/wordpiece's one-U+FFFD-per-byte policy), and its "content" string is
tokenised by BertWordPieceTokenizer(VOCAB, lowercase=True).  Lone surrogates
from \\uD800-style escapes become U+FFFD, as in pipeline/json.c.
OUT_IDS gets one line per document: the ids separated by spaces
(.gz: gzip, .zst: zstd when available).

--codepoints also writes what the normaliser and the pre-tokenizer do to every
code point except surrogates, one line per run of code points that behave
alike:  LO HI KIND CLASS [OUT]
  KIND  D dropped, S becomes a space, C padded as a CJK word, N kept
  OUT   the normalised text as hex code points joined by '.', '=' when the
        code point is unchanged (C and N only)
  CLASS what BertPreTokenizer does to the raw code point between two letters:
        W splits there (white space), P isolates it (punctuation), L keeps it.

--ccc-pairs probes canonical reordering, which Hugging Face's NFD does with
its own (older) combining classes: K is every code point that the
normaliser keeps unchanged and whose combining class (Python's unicodedata)
is not 0; for every ordered pair (a, b) of K, "x" + a + b is normalised and
the pair is listed when the result is "x" + b + a.  First line: K.
"""
import gzip
import json
import re
import sys


def open_out(path):
    if path.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
    if path.endswith(".zst"):
        import zstandard
        return zstandard.open(path, "wt", encoding="utf-8", cctx=zstandard.ZstdCompressor(level=19))
    return open(path, "w", encoding="utf-8")


def read_corpus(path):
    if path.endswith(".zst"):
        import zstandard
        with open(path, "rb") as f:
            data = zstandard.ZstdDecompressor().stream_reader(f).read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    surrogate = re.compile("[\ud800-\udfff]")
    docs = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        doc = json.loads(line.decode("utf-8", "replace"))["content"]
        docs.append(surrogate.sub("\ufffd", doc))
    return docs


def codepoints(tok, path):
    norm = tok._tokenizer.normalizer
    pre = tok._tokenizer.pre_tokenizer
    rows = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        n = norm.normalize_str(c)
        if n == "":
            kind, out = "D", ""
        elif n == " ":
            kind, out = "S", ""
        elif len(n) >= 3 and n[0] == " " and n[-1] == " ":
            kind, out = "C", n[1:-1]
        else:
            kind, out = "N", n
        out = "=" if out == c else ".".join("%X" % ord(x) for x in out)
        if kind in "DS":
            out = ""
        p = [s for s, _ in pre.pre_tokenize_str("a" + c + "a")]
        if p == ["a", "a"]:
            cls = "W"
        elif p == ["a", c, "a"]:
            cls = "P"
        elif p == ["a" + c + "a"]:
            cls = "L"
        else:
            cls = "X" + ".".join("%X" % ord(x) for x in "|".join(p))
        rows.append((cp, kind, cls, out))
    with open_out(path) as f:
        f.write("# tokenizers %s\n" % __import__("tokenizers").__version__)
        i = 0
        while i < len(rows):
            cp, kind, cls, out = rows[i]
            j = i
            if out in ("", "="):
                while (j + 1 < len(rows) and rows[j + 1][0] == rows[j][0] + 1 and rows[j + 1][1:] == (kind, cls, out)):
                    j += 1
            f.write("%X %X %s %s%s\n" % (cp, rows[j][0], kind, cls, " " + out if out else ""))
            i = j + 1


def ccc_pairs(tok, path):
    import unicodedata
    norm = tok._tokenizer.normalizer
    k = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and unicodedata.combining(chr(cp))
         and norm.normalize_str(chr(cp)) == chr(cp)]
    swapped = []
    for a in k:
        for b in k:
            if a != b and norm.normalize_str("x" + a + b) == "x" + b + a:
                swapped.append((a, b))
    with open_out(path) as f:
        f.write("# unicodedata %s, K: %s\n" % (unicodedata.unidata_version, " ".join("%X" % ord(c) for c in k)))
        for a, b in swapped:
            f.write("%X %X\n" % (ord(a), ord(b)))
    print("hf_parity_ids: %d marks kept, %d of %d pairs reordered -> %s" % (len(k), len(swapped), len(k) * (len(k) - 1), path))


def main():
    args = sys.argv[1:]
    cp_out = pairs_out = None
    if "--codepoints" in args:
        k = args.index("--codepoints")
        cp_out = args[k + 1]
        del args[k:k + 2]
    if "--ccc-pairs" in args:
        k = args.index("--ccc-pairs")
        pairs_out = args[k + 1]
        del args[k:k + 2]
    if len(args) not in (1, 3):
        sys.exit(__doc__)
    from tokenizers import BertWordPieceTokenizer
    tok = BertWordPieceTokenizer(args[0], lowercase=True)
    if len(args) == 3:
        corpus, out = args[1], args[2]
        docs = read_corpus(corpus)
        encs = tok.encode_batch(docs)
        with open_out(out) as f:
            for e in encs:
                f.write(" ".join(map(str, e.ids)) + "\n")
        print("hf_parity_ids: %d documents, %d tokens -> %s" % (len(encs), sum(len(e.ids) for e in encs), out))
    if pairs_out:
        ccc_pairs(tok, pairs_out)
    if cp_out:
        codepoints(tok, cp_out)
        print("hf_parity_ids: code points -> %s" % cp_out)


if __name__ == "__main__":
    main()
