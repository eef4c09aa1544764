#!/usr/bin/python3
"""gen_hfcompat.py - writes tokenizer/hfcompat.c from the Hugging Face dump.

  gen_hfcompat.py tests/data/wordpiece/hf_codepoints.tsv.zst [tests/data/wordpiece/hf_ccc_pairs.txt.zst] \
      > tokenizer/hfcompat.c

The dump (tests/hf_parity_ids.py --codepoints, made with tokenizers 0.23.2)
says what the BertNormalizer and BertPreTokenizer do to each code point.
Hugging Face takes categories from the unicode_categories crate (old Unicode
tables in which "other" means Cc Cf Co Cs: unassigned code points are kept),
white space and lowercase from Rust's std (a newer Unicode), and NFD from
unicode-normalization-alignments.  wordpiece.c asks utf8proc (Unicode 15) and
flips its answer on the code points listed here:
  other   dropped by clean text (base: utf8proc's Cc Cf Co Cs)
  mn      removed after NFD       (base: utf8proc's Mn)
  punct   isolated                (base: ASCII punctuation and utf8proc's P*)
  lower   {cp, lowercase} where utf8proc_tolower differs
  nfd     code points Hugging Face does not decompose
  ccc0    marks whose combining class is 0 for Hugging Face's NFD, so that it
          does not reorder them (from the pairs probe, hf_parity_ids.py
          --ccc-pairs: a kept mark that takes part in no reordering)
utf8proc is read through ctypes (libutf8proc.so.2).  Any code point that
these five sets cannot explain is reported on stderr and the script fails;
tests/tokenizer_test.c then checks every code point against the dump.
"""
import ctypes
import subprocess
import sys

U = ctypes.CDLL("libutf8proc.so.2")
U.utf8proc_category_string.restype = ctypes.c_char_p
U.utf8proc_tolower.restype = ctypes.c_int32
U.utf8proc_decompose_char.restype = ctypes.c_ssize_t
U.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.c_ssize_t,
                                      ctypes.c_int, ctypes.c_void_p]
UTF8PROC_DECOMPOSE = 1 << 3
WS = set([0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000] +
         list(range(0x2000, 0x200B)))


def cat(cp):
    return U.utf8proc_category_string(cp).decode()


def nfd(cp):
    buf = (ctypes.c_int32 * 16)()
    n = U.utf8proc_decompose_char(cp, buf, 16, UTF8PROC_DECOMPOSE, None)
    return [buf[i] for i in range(n)] if 0 < n <= 16 else [cp]


def ascii_punct(cp):
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


def read_text(path):
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout.decode()
    if path.endswith(".gz"):
        import gzip
        return gzip.open(path, "rt").read()
    return open(path).read()


class Prop(ctypes.Structure):
    _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]


U.utf8proc_get_property.restype = ctypes.POINTER(Prop)


def ccc(cp):
    return U.utf8proc_get_property(cp).contents.combining_class


def ccc_zero(path):
    """The kept marks that Hugging Face never reorders; checks that utf8proc's
    classes, with these set to 0, predict every probed pair."""
    lines = read_text(path).splitlines()
    k = [int(x, 16) for x in lines[0].split("K:")[1].split()]
    swapped = set(tuple(int(x, 16) for x in l.split()) for l in lines[1:] if l.strip())
    moved = set(a for a, b in swapped) | set(b for a, b in swapped)
    zero = set(c for c in k if c not in moved)
    bad = 0
    for a in k:
        for b in k:
            if a == b:
                continue
            pred = a not in zero and b not in zero and ccc(a) > ccc(b) > 0
            if pred != ((a, b) in swapped):
                bad += 1
                if bad <= 20:
                    print("gen_hfcompat: pair U+%04X U+%04X: reordered=%s, model says %s" % (a, b, (a, b) in swapped, pred),
                          file=sys.stderr)
    if bad:
        sys.exit("gen_hfcompat: %d pairs unexplained" % bad)
    return zero, len(k), len(swapped)


def load(path):
    text = read_text(path)
    rows, version = {}, "?"
    for line in text.splitlines():
        if line.startswith("#"):
            version = line[1:].strip()
            continue
        f = line.split()
        lo, hi = int(f[0], 16), int(f[1], 16)
        for cp in range(lo, hi + 1):
            out = f[4] if len(f) > 4 else ""
            rows[cp] = (f[2], f[3], cp if out == "=" else None if out == "" else [int(x, 16) for x in out.split(".")])
    return rows, version


def main():
    rows, version = load(sys.argv[1])
    other, mn, punct, lower, nfd_none, bad = set(), set(), set(), {}, set(), []
    # pass 1: categories
    for cp, (kind, cls, out) in rows.items():
        c = cat(cp)
        if (cls == "P") != (ascii_punct(cp) or c.startswith("P")):
            punct.add(cp)
        if (cls == "W") != (cp in WS):
            bad.append((cp, "white space"))
        if cp in (0, 0xFFFD, 9, 10, 13):
            continue
        u_other = c in ("Cc", "Cf", "Co", "Cs")
        if kind == "D":
            hf_other = c != "Mn" and not all(cat(x) == "Mn" for x in nfd(cp))
        else:
            hf_other = False
        if hf_other != u_other:
            other.add(cp)
        if kind in "NC" and out == cp and c == "Mn":
            mn.add(cp)

    def is_mn(x):
        return (cat(x) == "Mn") != (x in mn)

    def is_other(x):
        return (cat(x) in ("Cc", "Cf", "Co", "Cs")) != (x in other)

    # pass 2: what NFD + Mn removal + lowercase give, against the dump
    for cp, (kind, cls, out) in rows.items():
        if kind not in "NC":
            continue
        want = [cp] if out == cp else out
        for attempt in range(2):
            d = [cp] if cp in nfd_none else nfd(cp)
            got = []
            for x in d:
                if is_mn(x):
                    continue
                y = lower.get(x, U.utf8proc_tolower(x))
                got.append(y)
            if got == want:
                break
            if attempt == 0:
                if len(d) > 1 and len(want) == 1 and not is_mn(cp):
                    nfd_none.add(cp)           # not decomposed by Hugging Face
                elif len(d) == 1 and len(want) == 1 and not is_mn(cp):
                    lower[cp] = want[0]        # another lowercase
                else:
                    bad.append((cp, "output %s, want %s" % (got, want)))
                    break
            else:
                bad.append((cp, "output %s, want %s" % (got, want)))
    zero, nk, nsw = ccc_zero(sys.argv[2]) if len(sys.argv) > 2 else (set(), 0, 0)
    for cp, why in bad[:50]:
        print("gen_hfcompat: U+%04X unexplained: %s" % (cp, why), file=sys.stderr)
    if bad:
        sys.exit("gen_hfcompat: %d code points unexplained" % len(bad))

    def ranges(s):
        out, cps = [], sorted(s)
        for x in cps:
            if out and out[-1][1] == x - 1:
                out[-1][1] = x
            else:
                out.append([x, x])
        return out

    def table(name, s, what):
        r = ranges(s)
        print("/* %s: %d code points */" % (what, len(s)))
        print("const uint32_t %s[][2] = {" % name)
        line = "   "
        for lo, hi in r or [[0xFFFFFFFF, 0]]:
            item = " {0x%X, 0x%X}," % (lo, hi)
            if len(line) + len(item) > 100:
                print(line)
                line = "   "
            line += item
        print(line)
        print("};")
        print("const int %s_n = %d;\n" % (name, len(r)))

    print("/* hfcompat.c - GENERATED by tokenizer/gen_hfcompat.py from the dump of %s;" % version)
    print(" * do not edit.  See hfcompat.h. */")
    print('#include "tokenizer/hfcompat.h"\n')
    table("wp_hf_other_flip", other, "\"other\" (dropped by clean text) where utf8proc's Cc/Cf/Co/Cs disagree")
    table("wp_hf_mn_flip", mn, "nonspacing mark where utf8proc's Mn disagrees")
    table("wp_hf_punct_flip", punct, "punctuation where utf8proc's P* disagrees")
    table("wp_hf_nfd_none", nfd_none, "not decomposed by Hugging Face")
    table("wp_hf_ccc0", zero, "combining class 0 for Hugging Face's NFD (%d kept marks probed, %d pairs reordered)" % (nk, nsw))
    print("/* lowercase where utf8proc_tolower differs: %d code points */" % len(lower))
    print("const uint32_t wp_hf_lower[][2] = {")
    items = ["{0x%X, 0x%X}" % kv for kv in sorted(lower.items())] or ["{0xFFFFFFFF, 0}"]
    for k in range(0, len(items), 6):
        print("    " + ", ".join(items[k:k + 6]) + ",")
    print("};")
    print("const int wp_hf_lower_n = %d;" % len(lower))


if __name__ == "__main__":
    main()
