#!/usr/bin/python3
"""authors_filter.py - the authors' OSCAR filter, as the paper describes it.

    authors_filter.py IN.jsonl.zst OUT.jsonl.zst [--level N]

A zstd stream in, json.loads on each line, the three rules, json.dumps of
every kept document, a zstd stream out (level 3, python-zstandard's default).
This is the reference oscar-filter is checked against (tests/oscar_filter_test.sh)
and the speed anchor of bench/filter_bench.sh.  Run it with Debian's
/usr/bin/python3 (python3-zstandard).

A document is kept iff
  1. no entry of metadata.categories is one of the eleven UT1 categories,
     compared exactly (case-sensitive, after JSON unescaping);
  2. 5.0 < metadata.harmful_pp < 100000.0, where a missing or null value
     counts as 100000.0 (so it is dropped);
  3. metadata.quality_warnings is missing, null or empty.
Lines are split at '\n' only (JSON Lines); a line that is not valid JSON, or
not valid UTF-8, stops the script with an exception.
"""
import io
import json
import sys

import zstandard

UT1_CATEGORIES = {"agressif", "adult", "cryptojacking", "dangerous_material", "phishing",
                  "warez", "ddos", "hacking", "malware", "mixed_adult", "sect"}


def keep(doc):
    md = doc["metadata"]
    cats = md.get("categories") or []
    if any(c in UT1_CATEGORIES for c in cats):
        return False
    pp = md.get("harmful_pp")
    if pp is None:
        pp = 100000.0
    if not 5.0 < pp < 100000.0:
        return False
    if md.get("quality_warnings"):
        return False
    return True


def main():
    args = sys.argv[1:]
    level = 3
    if "--level" in args:
        i = args.index("--level")
        level = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    n = kept = 0
    with open(args[0], "rb") as fh, open(args[1], "wb") as fo:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True),
                                  encoding="utf-8", newline="\n")
        with zstandard.ZstdCompressor(level=level).stream_writer(fo) as w:
            for line in reader:
                n += 1
                doc = json.loads(line)
                if keep(doc):
                    kept += 1
                    w.write((json.dumps(doc) + "\n").encode("utf-8"))
    sys.stderr.write("authors_filter: %d documents, %d kept\n" % (n, kept))


if __name__ == "__main__":
    main()
