#!/usr/bin/env python3
"""wordpiece_hf.py - the Hugging Face anchor for bench/wordpiece_bench.sh.

  RAYON_NUM_THREADS=N wordpiece_hf.py VOCAB CORPUS.jsonl [RUNS]

Times BertWordPieceTokenizer(VOCAB, lowercase=True).encode_batch over the
"content" of every line (the corpus read beforehand, not timed), RUNS times
(default 3), and prints one line: median seconds, content MB/s, tokens/s.
The thread count is rayon's: set RAYON_NUM_THREADS before starting Python.
"""
import json
import os
import statistics
import sys
import time

from tokenizers import BertWordPieceTokenizer


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    vocab, corpus = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with open(corpus, "rb") as f:
        docs = [json.loads(l)["content"] for l in f if l.strip()]
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    tok = BertWordPieceTokenizer(vocab, lowercase=True)
    times, ntok = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        encs = tok.encode_batch(docs)
        times.append(time.perf_counter() - t0)
        ntok = sum(len(e.ids) for e in encs)
        del encs
    t = statistics.median(times)
    print("hf threads=%s docs=%d content_MB=%.2f tokens=%d median_s=%.3f MB/s=%.2f Mtok/s=%.3f runs=%s" % (
        os.environ.get("RAYON_NUM_THREADS", "default"), len(docs), nbytes / 1e6, ntok, t, nbytes / 1e6 / t,
        ntok / 1e6 / t, ",".join("%.3f" % x for x in times)))


if __name__ == "__main__":
    main()
