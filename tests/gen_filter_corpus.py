#!/usr/bin/python3
"""gen_filter_corpus.py - synthetic OSCAR-2301-shaped inputs for oscar-filter.

    gen_filter_corpus.py edge  [--n N] [--seed S]      edge-case corpus (JSONL, stdout)
    gen_filter_corpus.py bench --mb MB [--seed S]      realistic corpus of about MB megabytes
    gen_filter_corpus.py ut1 DIR [--domains N] [--seed S]
                                                       a UT1-shaped folder (all eleven categories)

edge: every document is one line whose fields are assembled from raw JSON
text, so that the corpus holds what json.dumps never writes: harmful_pp at and
around both bounds as integers, decimals and exponents, NaN and infinities,
null and missing fields, empty lists, category names in other cases and with
escapes, other key orders, odd whitespace, duplicate keys (the last wins, as
in Python), escapes and surrogate pairs (lone ones too) in content, and
decoy fields of the same names nested elsewhere.  Every document stays inside
OSCAR's schema (metadata an object, harmful_pp a number or null, categories
and quality_warnings lists or null), so that the authors' script
(tests/authors_filter.py) accepts every line; documents outside the schema
are tested separately (tests/oscar_filter_test.sh).

bench: documents shaped like OSCAR 23.01 en_meta (compact JSON, raw UTF-8,
content of a few KB made of lines of words, one sentence_identifications
entry per line), with about 60% of them passing the paper's rules.

Deterministic for a given seed.  Run with Debian's /usr/bin/python3.
"""
import json
import os
import random
import sys

UT1 = ["agressif", "adult", "cryptojacking", "dangerous_material", "phishing", "warez",
       "ddos", "hacking", "malware", "mixed_adult", "sect"]
OTHER_CATS = ["news", "blog", "shopping", "sports", "games", "press", "forums", "jobsearch"]
WARNINGS = ["short_sentences", "header", "footer", "tiny", "noisy"]


def uuid(rng):
    h = "%032x" % rng.getrandbits(128)
    return "<urn:uuid:%s-%s-%s-%s-%s>" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


# ---------------------------------------------------------------- edge corpus

PP_INSIDE = ["6", "5.000000000000001", "5.01", "263.27", "99999", "99999.99999999999",
             "9.9999e4", "5.1e0", "0.6e1", "60e-1", "1e3", "1E3", "1e+3", "1.0E+03",
             "5.0000001", "99998.5", "10", "12345.6789", "7.5"]
PP_OUTSIDE = ["5", "5.0", "5e0", "0.5e1", "50e-1", "5.0000000000000001", "4.999999999999999",
              "4", "0", "-0", "-0.0", "-1", "-263.5", "100000", "100000.0", "1e5", "1E5",
              "1e+5", "1.0e5", "100000.00000000001", "99999.999999999999", "100001", "1e6",
              "1e400", "-1e400", "1e-300", "NaN", "Infinity", "-Infinity",
              "100000000000000000000000000000000000000", "2.5", "0.000001"]
CAT_DROP = ['["adult"]', '["news","adult"]', '["mixed_adult"]', '["sect"]', '["agressif"]',
            '["cryptojacking"]', '["dangerous_material"]', '["phishing"]', '["warez"]',
            '["ddos"]', '["hacking"]', '["malware"]', '["\\u0061dult"]', '["ag\\u0072essif"]',
            '["blog","shopping","phishing"]', '[ "adult" ]', '[1,null,"warez"]', '["m\\u0061lware"]']
CAT_KEEP = ["null", "[]", '["news"]', '["Adult"]', '["ADULT"]', '["adult "]', '[" adult"]',
            '["mixed-adult"]', '["Mixed_Adult"]', '["adults"]', '["adul"]', '["SECT"]',
            '["news","blog"]', '[1,2.5,null,true]', '["adult\\u0000"]', '["a\\u00efdult"]',
            '["\\u0041dult"]', '["PHISHING","Warez"]', '["adult\\n"]', '[""]']
QW_KEEP = ["null", "[]", "[ ]", "[\t]"]
QW_DROP = ['["tiny"]', '["short_sentences","header"]', '["footer"]', '["noisy"]', '[""]',
           '[null]', '[[]]', '[{}]', '["Tiny"]', '[0]', '[false]', '["header","footer","tiny"]']
CONTENTS = ['"plain text"', '"line one\\nline two\\n"', '"quote \\" backslash \\\\ slash \\/"',
            '"controls \\b\\f\\r\\t done"', '"accents \\u00e9\\u00E8 and raw caf\u00e9"',
            '"emoji pair \\ud83d\\ude00 and raw \U0001F600"', '"lone high \\ud800 here"',
            '"lone low \\udc00 here"', '"reversed \\udc00\\ud800"', '"null char \\u0000 inside"',
            '"\\"categories\\": [\\"adult\\"], \\"harmful_pp\\": 1"', '""',
            '"del \x7f and nbsp \u00a0"', '"bom \ufeff mid-string"',
            '"long ' + "word " * 3000 + '"', '"{\\"metadata\\":{}}"']


def edge_doc(rng, i, kind):
    """One document line; kind ("pp", "cat", "qw", "any") picks the rule whose edges it explores."""
    rid = uuid(rng)
    meta = []
    # harmful_pp
    want_pp = kind != "pp" and rng.random() < 0.9
    if want_pp:
        meta.append(('"harmful_pp"', rng.choice(PP_INSIDE)))
    else:
        c = rng.random()
        if c < 0.15:
            pass                                   # missing
        elif c < 0.3:
            meta.append(('"harmful_pp"', "null"))
        else:
            meta.append(('"harmful_pp"', rng.choice(PP_OUTSIDE + PP_INSIDE)))
    # categories
    c = rng.random()
    if kind == "cat":
        cv = rng.choice(CAT_DROP + CAT_KEEP)
    elif c < 0.2:
        cv = None
    else:
        cv = rng.choice(CAT_KEEP)
    if cv is not None:
        meta.append(('"categories"', cv))
    # quality_warnings
    c = rng.random()
    if kind == "qw":
        qv = rng.choice(QW_DROP + QW_KEEP)
    elif c < 0.2:
        qv = None
    else:
        qv = rng.choice(QW_KEEP)
    if qv is not None:
        meta.append(('"quality_warnings"', qv))
    meta.append(('"identification"', '{"label":"en","prob":0.9%d}' % rng.randrange(100)))
    meta.append(('"tlsh"', rng.choice(['null', '"tlsh:T1%040X"' % rng.getrandbits(160)])))
    if rng.random() < 0.3:      # decoys: the same names nested one level deeper
        meta.append(('"extra"', '{"harmful_pp":1,"categories":["adult"],"quality_warnings":["tiny"]}'))
    if rng.random() < 0.3:
        meta.append(('"sentence_identifications"',
                     '[' + ','.join(rng.choice(['null', '{"label":"en","prob":0.8}',
                                                '{"label":"fr","prob":1e-1}']) for _ in range(rng.randrange(5))) + ']'))
    if rng.random() < 0.15:     # duplicate keys: an earlier value the last one replaces
        k = rng.choice(['"harmful_pp"', '"categories"', '"quality_warnings"'])
        dup = {'"harmful_pp"': rng.choice(['1', '300', 'null']),
               '"categories"': rng.choice(['["adult"]', 'null', '[]']),
               '"quality_warnings"': rng.choice(['["tiny"]', 'null', '[]'])}[k]
        meta.insert(0, (k, dup))
    if rng.random() < 0.1:      # escaped key names
        meta = [(k.replace('harmful_pp', 'harmful\\u005fpp').replace('categories', '\\u0063ategories'), v)
                for k, v in meta]
    # shuffle the keys, keeping each key's values (a duplicate, then the one
    # that replaces it) in their order
    keys = []
    for k, _ in meta:
        if k not in keys:
            keys.append(k)
    if rng.random() < 0.5:
        rng.shuffle(keys)
    order = [(k, v) for k in keys for kk, v in meta if kk == k]
    wh = [('"warc-record-id"', json.dumps(rid)), ('"warc-date"', '"2022-11-26T09:45:47Z"'),
          ('"content-type"', '"text/plain"'), ('"content-length"', '"%d"' % rng.randrange(100, 9000)),
          ('"warc-type"', '"conversion"'),
          ('"warc-identified-content-language"', rng.choice(['"eng"', '"eng,fra"', 'null'])),
          ('"warc-refers-to"', json.dumps(uuid(rng))),
          ('"warc-target-uri"', json.dumps("https://site%d.example.com/page/%d?q=%d" % (i % 97, i, i))),
          ('"warc-block-digest"', '"sha1:%032X"' % rng.getrandbits(128))]
    if rng.random() < 0.3:
        rng.shuffle(wh)
    if rng.random() < 0.05:     # a decoy metadata object inside warc_headers
        wh.append(('"metadata"', '{"harmful_pp":1,"categories":["adult"]}'))
    seps = [(",", ":"), (", ", ": "), (" ,\t", " :\t"), ("\r,", ":\r ")]
    s1, s2 = rng.choice(seps) if rng.random() < 0.3 else seps[0]

    def obj(pairs):
        return "{" + s1.join(k + s2 + v for k, v in pairs) + "}"
    top = [('"content"', rng.choice(CONTENTS)), ('"warc_headers"', obj(wh)), ('"metadata"', obj(order))]
    if rng.random() < 0.3:
        rng.shuffle(top)
    if rng.random() < 0.1:
        top.append(('"harmful_pp"', '1'))          # decoy at the top level
    if rng.random() < 0.05:
        top.insert(0, ('"metadata"', '{"harmful_pp":300,"categories":["adult"]}'))  # replaced later
    line = obj(top)
    if rng.random() < 0.1:
        line = rng.choice([" ", "\t", " \t "]) + line + rng.choice(["", " ", "\t", "\r"])
    return line


def gen_edge(args):
    rng = random.Random(args.get("seed", 1))
    n = args.get("n", 3000)
    kinds = ["pp", "cat", "qw", "any"]
    out = sys.stdout.buffer
    for i in range(n):
        line = edge_doc(rng, i, kinds[i % 4])
        out.write(line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line)
        out.write(b"\n")


# ---------------------------------------------------------------- bench corpus

def make_words(rng):
    syll = ["ta", "re", "mon", "ka", "li", "ver", "sto", "an", "el", "pri", "du", "ne", "so",
            "ment", "tion", "ic", "al", "or", "in", "ex", "co", "pro", "ab", "ul", "ter", "gen"]
    words = ["the", "of", "and", "to", "a", "in", "is", "for", "that", "on", "with", "as", "it",
             "was", "by", "be", "are", "this", "from", "at", "or", "you", "an", "your", "have"]
    for w in ["caf\u00e9", "na\u00efve", "\u2019s", "\u201cquoted\u201d", "\u2014", "r\u00e9sum\u00e9",
              "\u00a9", "\u20ac5", "1990s", "2022", "U.S.", "(see", "below)", "e-mail", "http://x.org",
              "\"quoted\"", "back\\slash", "tab\there"]:
        words.append(w)
    while len(words) < 6000:
        words.append("".join(rng.choice(syll) for _ in range(rng.randrange(1, 5))))
    weights = [1.0 / (r + 10) for r in range(len(words))]
    return words, weights


def gen_bench(args):
    rng = random.Random(args.get("seed", 7))
    words, weights = make_words(rng)
    pool = rng.choices(words, weights, k=400000)    # a stream of words to slice lines from
    target = int(args.get("mb", 100) * 1e6)
    out = sys.stdout.buffer
    written = 0
    i = 0
    while written < target:
        nlines = rng.randrange(4, 60)
        lines = []
        size = rng.randrange(1500, 6000)
        per = max(20, size // nlines)
        for _ in range(nlines):
            a = rng.randrange(0, len(pool) - 40)
            k = max(1, per // 6 + rng.randrange(-3, 4))
            s = " ".join(pool[a:a + k])
            lines.append(s[:1].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?", ":", ""]))
        content = "\n".join(lines)
        r = rng.random()
        cats = None
        if r < 0.04:
            cats = [rng.choice(UT1)]
        elif r < 0.10:
            cats = [rng.choice(OTHER_CATS)]
        pp = None if rng.random() < 0.05 else round(rng.lognormvariate(6.5, 1.6), 6)
        qw = None
        r = rng.random()
        if r < 0.25:
            qw = rng.sample(WARNINGS, rng.randrange(1, 3))
        elif r < 0.30:
            qw = []
        sid = [None if len(l) < 20 else {"label": "en", "prob": round(rng.uniform(0.5, 1.0), 7)} for l in lines]
        doc = {"content": content,
               "warc_headers": {"warc-record-id": uuid(rng), "warc-date": "2022-11-26T09:45:47Z",
                                "content-type": "text/plain", "content-length": str(len(content.encode())),
                                "warc-type": "conversion",
                                "warc-identified-content-language": rng.choice(["eng", "eng,fra", None]),
                                "warc-refers-to": uuid(rng),
                                "warc-target-uri": "https://www.site%d.example.org/%s/%d.html" % (rng.randrange(100000), rng.choice(words).replace(" ", ""), i),
                                "warc-block-digest": "sha1:%032X" % rng.getrandbits(160)},
               "metadata": {"identification": {"label": "en", "prob": round(rng.uniform(0.6, 1.0), 6)},
                            "harmful_pp": pp,
                            "tlsh": "tlsh:T1%068X" % rng.getrandbits(272),
                            "quality_warnings": qw, "categories": cats,
                            "sentence_identifications": sid}}
        b = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        out.write(b)
        written += len(b)
        i += 1


# ---------------------------------------------------------------- UT1 folder

def gen_ut1(args):
    rng = random.Random(args.get("seed", 3))
    root = args["dir"]
    n = args.get("domains", 1000)
    tlds = ["com", "net", "org", "info", "fr", "de", "ru", "xxx", "co.uk", "io"]
    syll = ["sex", "hot", "cam", "girl", "tube", "porn", "xx", "live", "chat", "pic", "vid", "club",
            "red", "star", "love", "bet", "win", "free", "top", "web", "net", "hub", "zone", "max"]
    for cat in UT1:
        d = os.path.join(root, cat)
        os.makedirs(d, exist_ok=True)
        count = n if cat == "adult" else max(10, n // 200)
        with open(os.path.join(d, "domains"), "w") as f:
            f.write("# %s domains (synthetic)\n" % cat)
            for j in range(count):
                name = "".join(rng.choice(syll) for _ in range(rng.randrange(2, 4))) + str(j)
                if rng.random() < 0.2:
                    name = rng.choice(["www.", "m.", "img."]) + name
                f.write("%s.%s\n" % (name, rng.choice(tlds)))
        with open(os.path.join(d, "urls"), "w") as f:
            for j in range(max(5, count // 50)):
                f.write("host%d.%s.example/%s/%d\n" % (j, cat, rng.choice(syll), j))
        with open(os.path.join(d, "usage"), "w") as f:
            f.write("black\n")
    with open(os.path.join(root, "adult", "expressions"), "w") as f:
        f.write("(^|[-?+=/_])(sex(e|y)?|porno?|xxx+)([-+=_/?.]|$)\n")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("edge", "bench", "ut1"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    mode = sys.argv[1]
    args = {}
    rest = sys.argv[2:]
    if mode == "ut1":
        if not rest:
            sys.stderr.write("ut1 needs a folder\n")
            sys.exit(2)
        args["dir"] = rest.pop(0)
    while rest:
        k = rest.pop(0)
        if k in ("--n", "--seed", "--domains"):
            args[k[2:]] = int(rest.pop(0))
        elif k == "--mb":
            args["mb"] = float(rest.pop(0))
        else:
            sys.stderr.write("unknown argument %s\n" % k)
            sys.exit(2)
    {"edge": gen_edge, "bench": gen_bench, "ut1": gen_ut1}[mode](args)


if __name__ == "__main__":
    main()
