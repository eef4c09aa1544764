#!/usr/bin/python3
"""gen_parity_corpus.py - deterministic test text for the wordpiece tokenizer.

  gen_parity_corpus.py --vocab VOCAB -o corpus.jsonl            the parity corpus
  gen_parity_corpus.py --vocab VOCAB --english-mb 100 -o en.jsonl   English only (bench)

Writes JSON Lines, one document per line in the field "content" (beside a few
OSCAR-like fields).  The same vocab and the same seed give the same bytes on
any Python 3 (only random.Random with an integer seed is used; no
unicodedata, no network).  The vocab gives English words in roughly the
order of their frequency (bert-base-uncased lists whole words from id 1996
on, most frequent first), so that the English text has a realistic mix of
whole words and words split into pieces.

The parity corpus covers what the issue lists: English web-like text, more
than ten scripts, CJK (and the edges of Hugging Face's CJK ranges), accents
composed and decomposed, reordering of combining marks, Turkish dotted and
dotless i, Greek final sigma, emoji and ZWJ sequences, control, format and
zero-width characters, private use, characters outside the BMP, unassigned
code points, words of 99-101 characters, very long documents, the special
token strings, ASCII and Unicode punctuation, JSON escapes (lone surrogates
too) and bytes that are not UTF-8.  Lines are bytes: invalid UTF-8 stands
raw inside JSON strings.
"""
import argparse
import bisect
import json
import random
import sys

SEED = 20240917


class English:
    """Web-like English text from the vocab's word list."""

    def __init__(self, vocab_path, rng):
        self.rng = rng
        words, suffixes = [], []
        with open(vocab_path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                t = line.rstrip("\n")
                if i >= 1996 and t.isascii() and t.isalpha() and t.islower():
                    words.append(t)
                elif t.startswith("##") and t[2:].isascii() and t[2:].isalpha():
                    suffixes.append(t[2:])
        if len(words) < 1000:
            sys.exit("gen_parity_corpus: %s does not look like the bert-base-uncased vocab" % vocab_path)
        self.words, self.suffixes = words, suffixes
        acc, cum = 0.0, []
        for r in range(len(words)):
            acc += 1.0 / (r + 8) ** 1.07
            cum.append(acc)
        self.cum, self.total = cum, acc
        self.boiler = [
            "Posted on {month} {day}, {year} by admin", "Click here to read more \u00bb",
            "Home | About Us | Contact | Privacy Policy", "Share this: Facebook Twitter Email",
            "Copyright \u00a9 {year} All Rights Reserved.", "Leave a Reply Cancel reply",
            "Your email address will not be published. Required fields are marked *",
            "Tags: {w}, {w}, {w}", "Read more at https://www.{w}.com/{w}-{w}/{num}",
            "Call us at (555) {num}-{num} or e-mail info@{w}.org", "Price: ${num}.99 (save {num}%)",
            "Q&A: What's the {w} of {w}?", "Rated 4.5/5 based on {num} reviews",
        ]
        self.months = ["January", "February", "March", "April", "May", "June", "July",
                       "August", "September", "October", "November", "December"]
        self.contractions = ["don't", "it's", "I'm", "can't", "won't", "we're", "they've", "you'll",
                             "isn't", "that's", "didn't", "I'd", "let's", "there's"]
        self.fancy = ["\u2019s", "\u201cquote\u201d", "\u2013", "\u2014", "\u2026", "caf\u00e9",
                      "r\u00e9sum\u00e9", "na\u00efve", "\u00bd", "\u00b0C", "\u20ac{num}", "\u00a3{num}",
                      "\u2122", "fa\u00e7ade", "se\u00f1or", "\u2022"]

    def word(self):
        r = self.rng
        w = self.words[bisect.bisect_left(self.cum, r.random() * self.total)]
        x = r.random()
        if x < 0.06:
            w += r.choice(self.suffixes)
        elif x < 0.08:
            w += self.words[bisect.bisect_left(self.cum, r.random() * self.total)]
        elif x < 0.095:
            w = w.capitalize()
        elif x < 0.10:
            w = w.upper()
        elif x < 0.115:
            w = str(r.choice([r.randint(0, 100), r.randint(1900, 2030), r.randint(0, 99999)]))
        elif x < 0.12:
            w = r.choice(self.contractions)
        elif x < 0.123:
            w = r.choice(self.fancy).replace("{num}", str(r.randint(1, 999)))
        return w

    def sentence(self):
        r = self.rng
        n = r.randint(4, 26)
        out = []
        for k in range(n):
            w = self.word()
            if k == 0:
                w = w[:1].upper() + w[1:]
            out.append(w)
            y = r.random()
            if y < 0.07 and k < n - 1:
                out[-1] += ","
            elif y < 0.075:
                out[-1] = "(" + out[-1] + ")"
            elif y < 0.08:
                out[-1] = '"' + out[-1] + '"'
            elif y < 0.085 and k < n - 1:
                out[-1] += "-" + self.word()
        return " ".join(out) + r.choice(".......?!:;")

    def boilerplate(self):
        r = self.rng
        s = r.choice(self.boiler)
        while "{w}" in s:
            s = s.replace("{w}", self.words[bisect.bisect_left(self.cum, r.random() * self.total)], 1)
        while "{num}" in s:
            s = s.replace("{num}", str(r.randint(10, 9999)), 1)
        return s.replace("{month}", r.choice(self.months)).replace("{day}", str(r.randint(1, 28))).replace(
            "{year}", str(r.randint(1995, 2024)))

    def document(self, paragraphs=None):
        r = self.rng
        paras = []
        for _ in range(paragraphs or r.randint(1, 9)):
            if r.random() < 0.15:
                paras.append(self.boilerplate())
            else:
                paras.append(" ".join(self.sentence() for _ in range(r.randint(1, 7))))
        return "\n".join(paras)


# Scripts: (name, ranges of letters to draw from, sample phrases)
SCRIPTS = [
    ("latin", [(0x61, 0x7A), (0xE0, 0xFF), (0x100, 0x17F), (0x180, 0x24F), (0x1E00, 0x1EFF)],
     ["Déjà vu, naïve façade", "Größe Straße Übermaß", "¿Dónde está el niño?", "Zażółć gęślą jaźń",
      "Příliš žluťoučký kůň", "Tiếng Việt có dấu", "Ærøskøbing og Ålborg", "Þórður Guðmundsson"]),
    ("greek", [(0x3B1, 0x3C9), (0x391, 0x3A9), (0x1F00, 0x1FFE)],
     ["Γειά σου Κόσμε", "ΟΔΥΣΣΕΥΣ ΚΑΙ ΣΑΣ", "ἐν ἀρχῇ ἦν ὁ λόγος", "σοφός; ΣΟΦΟΣ·"]),
    ("cyrillic", [(0x430, 0x44F), (0x410, 0x42F), (0x400, 0x40F), (0x450, 0x4FF)],
     ["Привет, мир!", "Съешь же ещё этих мягких французских булок", "Ёлка и ЙОД"]),
    ("armenian", [(0x531, 0x556), (0x561, 0x587)], ["Բարեւ աշխարհ"]),
    ("hebrew", [(0x5D0, 0x5EA), (0x591, 0x5C7)], ["שָׁלוֹם עוֹלָם", "שלום עולם"]),
    ("arabic", [(0x621, 0x64A), (0x64B, 0x652), (0x660, 0x669), (0x6A9, 0x6D3)],
     ["مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "١٢٣ ؟ ،"]),
    ("devanagari", [(0x905, 0x939), (0x93E, 0x94D), (0x966, 0x96F)], ["नमस्ते दुनिया", "हिन्दी भाषा।"]),
    ("bengali", [(0x985, 0x9B9), (0x9BE, 0x9CD)], ["আমার সোনার বাংলা"]),
    ("tamil", [(0xB85, 0xBB9), (0xBBE, 0xBCD)], ["வணக்கம் உலகம்"]),
    ("thai", [(0xE01, 0xE2E), (0xE30, 0xE4E)], ["สวัสดีชาวโลก", "ภาษาไทย"]),
    ("georgian", [(0x10D0, 0x10FA), (0x10A0, 0x10C5), (0x1C90, 0x1CBF)], ["გამარჯობა მსოფლიო"]),
    ("ethiopic", [(0x1200, 0x135A)], ["ሰላም ለዓለም"]),
    ("hangul", [(0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3131, 0x318E)], ["안녕하세요 세계", "한국어 텍스트"]),
    ("kana", [(0x3041, 0x3096), (0x30A1, 0x30FA), (0xFF66, 0xFF9D)], ["こんにちは世界", "カタカナ・ひらがな。"]),
    ("cjk", [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF), (0x2F800, 0x2FA1F)],
     ["你好，世界！", "中文文本處理", "漢字と仮名", "𠀀𠀁𪜀"]),
    ("tibetan", [(0xF40, 0xF6C), (0xF71, 0xF84)], ["བཀྲ་ཤིས་བདེ་ལེགས།"]),
    ("mongolian", [(0x1820, 0x1878)], ["ᠮᠣᠩᠭᠣᠯ"]),
    ("cherokee", [(0x13A0, 0x13F5), (0xAB70, 0xABBF)], ["ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ"]),
    ("gothic", [(0x10330, 0x1034A)], ["𐌰𐌱𐌲"]),
    ("deseret", [(0x10400, 0x1044F)], ["𐐔𐐯𐑅𐐨𐑉𐐯𐐻"]),
    ("math", [(0x1D400, 0x1D7FF)], ["𝐀𝐁𝐂 𝑥𝑦𝑧"]),
    ("cuneiform", [(0x12000, 0x12399)], ["𒀀𒀁"]),
]

# Combining marks: Mn of several blocks, some Mc/Me, and marks with unusual
# classes (reordering).
MARKS = [(0x300, 0x36F), (0x483, 0x489), (0x591, 0x5BD), (0x610, 0x61A), (0x93C, 0x94D), (0x1AB0, 0x1ACE),
         (0x1DC0, 0x1DFF), (0x20D0, 0x20F0), (0xFE20, 0xFE2F), (0x302A, 0x302F), (0x1D165, 0x1D169),
         (0x1D16D, 0x1D172), (0x1D17B, 0x1D182), (0x0F71, 0x0F84), (0x0E31, 0x0E3A), (0x903, 0x903),
         (0x9BE, 0x9CC), (0x1E2EC, 0x1E2EF)]

EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "🇫🇷", "🇺🇸", "1\ufe0f\u20e3", "❤\ufe0f",
         "🧑\u200d💻", "🤷🏻\u200d♀\ufe0f", "🥰", "🫠", "🦀", "☺", "✌🏿", "#\ufe0f\u20e3", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"]

ZW_CTRL = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad", "\u202a", "\u202e",
           "\u2066", "\u2069", "\u061c", "\u180e", "\u034f", "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c",
           "\x1b", "\x1c", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\ufff9", "\ufffb", "\ufffc", "\ufffd",
           "\U000e0001", "\U000e0020", "\U0001d173", "\U000110bd", "\u0600", "\u06dd", "\u070f", "\u08e2"]

SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u1680", "\u2000", "\u2003", "\u2009", "\u200a", "\u2028",
          "\u2029", "\u202f", "\u205f", "\u3000", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\x0b", "\x0c"]

PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + [
    "¡", "¿", "«", "»", "‘", "’", "“", "”", "„", "‹", "›", "–", "—", "―", "…", "‰", "′", "″", "‼", "⁇",
    "、", "。", "「", "」", "『", "』", "【", "】", "〜", "・", "！", "？", "，", "：", "；", "（", "）",
    "§", "¶", "·", "؟", "،", "।", "॥", "։", "׃", "፡", "።", "჻", "※", "⁂", "⸘", "⸮", "〽", "﹏", "＿",
    "€", "£", "¥", "¢", "©", "®", "°", "±", "×", "÷", "¬", "¦", "¨", "¯", "´", "¸", "µ", "∑", "√", "∞",
    "≈", "≠", "≤", "≥", "←", "→", "↑", "★", "☆", "♪", "✓", "①", "Ⅻ", "½", "²", "³", "ª", "º",
    "\u037e", "\u0387", "\u1fef", "\u1fed", "\u1fee", "\u2e2e", "\u2e4f", "\u2e5d", "\U00016e97", "\U0001e95e",
    "\U000110bb", "\U00011a9a", "\U00012470", "\ufe10", "\u2e3a"]

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

CASE_SAMPLES = [
    "İstanbul", "ISTANBUL", "ıstanbul", "İSTANBUL", "DİYARBAKIR", "ığdır", "IĞDIR", "iİıI", "i\u0307",
    "I\u0307", "İ\u0301", "ΟΔΟΣ", "ΟΔΟΣ.", "ΣΑΣ", "Σ", "σ", "ς", "ΣΣ", "ΌΣΟΣ", "ΆΣΜΑ", "ΣΊΣΥΦΟΣ", "Σ.Σ",
    "ΑΣ\u0301", "ǅ", "ǈ", "ǋ", "ǲ", "Ǆ", "ǆ", "ẞ", "ß", "Straße", "STRASSE", "\u212a", "\u2126", "\u212b",
    "ﬁ", "ﬂ", "ﬀ", "ﬃ", "ŉ", "ǰ", "ΐ", "ΰ", "և", "ﬓ", "Ａ", "ＢＣ", "ｘｙｚ", "Ⓐ", "ⓐ", "Ⅳ", "ⅳ", "ᏣᎳᎩ",
    "ꭰꭱ", "Ა", "ᲐᲑᲒ", "ა", "Ꞔ", "ꞔ", "Ɐ", "ɐ", "ᵃ", "ᴬ", "\U00010400", "\U00010428", "\U0001e900",
    "\U0001e922", "\U00016e40", "\U000104b0", "\U00010c80", "\U0001d400", "ΣΤΟ ΣΠΊΤΙ ΣΟΥ", "ǱǲǳǄǅǆ",
    "Ω", "ω", "ὨὩὪ", "ᾈᾉᾊ", "ᾼ", "ῌ", "ῼ", "Ϊ́", "Ȿ", "Ɫ", "Ɱ", "Ȣ", "Ꙁ", "ꙁ", "Ꮨ", "ꮸ",
]

CJK_EDGES = [0x33FF, 0x3400, 0x4DBF, 0x4DC0, 0x4DFF, 0x4E00, 0x9FFF, 0xA000, 0xF8FF, 0xF900, 0xFA6D, 0xFA6E,
             0xFAFF, 0xFB00, 0x1FFFF, 0x20000, 0x2A6DF, 0x2A6E0, 0x2A6FF, 0x2A700, 0x2B739, 0x2B73F, 0x2B740,
             0x2B81D, 0x2B81F, 0x2B820, 0x2B8A0, 0x2B91F, 0x2B920, 0x2CEA1, 0x2CEAF, 0x2CEB0, 0x2EBE0, 0x2F7FF,
             0x2F800, 0x2FA1D, 0x2FA1F, 0x2FA20, 0x30000, 0x3134A, 0x31350, 0x323AF, 0x2E80, 0x2F00, 0x3005,
             0x3007, 0x3021, 0x303B, 0x16FE4, 0x18800, 0x1B170]


class Gen:
    def __init__(self, vocab_path):
        self.r = random.Random(SEED)
        self.en = English(vocab_path, self.r)
        v = [l.rstrip("\n") for l in open(vocab_path, encoding="utf-8")]
        self.pieces = [t for t in v if not t.startswith("[") and len(t) > 1]

    def cp(self, ranges):
        r = self.r
        lo, hi = r.choice(ranges)
        return chr(r.randint(lo, hi))

    def script_word(self, ranges, marks=0.0):
        r = self.r
        s = ""
        for _ in range(r.randint(1, 10)):
            s += self.cp(ranges)
            if r.random() < marks:
                s += self.cp(MARKS)
        return s

    def script_doc(self):
        r = self.r
        name, ranges, phrases = r.choice(SCRIPTS)
        parts = []
        for _ in range(r.randint(3, 60)):
            x = r.random()
            if x < 0.25:
                parts.append(r.choice(phrases))
            elif x < 0.85:
                parts.append(self.script_word(ranges, 0.1))
            elif x < 0.92:
                parts.append(r.choice(PUNCT))
            else:
                o_name, o_ranges, o_phr = r.choice(SCRIPTS)
                parts.append(r.choice(o_phr) if r.random() < 0.5 else self.script_word(o_ranges))
        return self.join(parts)

    def join(self, parts):
        r = self.r
        out = parts[0] if parts else ""
        for p in parts[1:]:
            x = r.random()
            out += (" " if x < 0.8 else "" if x < 0.9 else r.choice(SPACES)) + p
        return out

    def accent_doc(self):
        r = self.r
        parts = []
        for _ in range(r.randint(3, 40)):
            x = r.random()
            if x < 0.3:      # composed letters
                parts.append("".join(chr(r.randint(0xC0, 0x24F)) for _ in range(r.randint(1, 8))))
            elif x < 0.6:    # base + stacks of marks (NFD, reordering)
                w = ""
                for _ in range(r.randint(1, 6)):
                    w += r.choice("aeiouncszAEIOUNCSZ\u03b1\u0391\u0430\u05d0\u0915")
                    for _ in range(r.choice([0, 1, 1, 2, 3, 5])):
                        w += self.cp(MARKS)
                parts.append(w)
            elif x < 0.7:    # same word composed and decomposed
                base = r.choice(["e\u0301", "a\u0300", "o\u0308", "u\u0302", "c\u0327", "n\u0303", "A\u030a",
                                 "E\u0301", "I\u0308", "s\u030c", "z\u0307", "o\u031b\u0301", "a\u0306\u0303",
                                 "e\u0302\u0323", "u\u031b\u0300"])
                comp = {"e\u0301": "é", "a\u0300": "à", "o\u0308": "ö", "u\u0302": "û", "c\u0327": "ç",
                        "n\u0303": "ñ", "A\u030a": "Å", "E\u0301": "É", "I\u0308": "Ï", "s\u030c": "š",
                        "z\u0307": "ż", "o\u031b\u0301": "ớ", "a\u0306\u0303": "ẵ", "e\u0302\u0323": "ệ",
                        "u\u031b\u0300": "ừ"}[base]
                parts.append("caf" + base + " caf" + comp + " " + comp * 3 + base)
            elif x < 0.8:    # zalgo
                parts.append("".join(c + "".join(self.cp(MARKS[:9]) for _ in range(r.randint(0, 12)))
                                     for c in "zalgo"))
            elif x < 0.9:    # marks with no base, after spaces, punctuation, CJK, specials
                parts.append(r.choice([" ", "!", "中", "[CLS]", "", "\u200b", "\x00"]) + self.cp(MARKS))
            else:
                parts.append(self.en.sentence())
        return self.join(parts)

    def case_doc(self):
        r = self.r
        parts = [r.choice(CASE_SAMPLES) for _ in range(r.randint(3, 30))]
        if r.random() < 0.5:
            parts.append(self.en.sentence().upper())
        return self.join(parts)

    def emoji_doc(self):
        r = self.r
        parts = []
        for _ in range(r.randint(3, 40)):
            x = r.random()
            if x < 0.3:
                parts.append(r.choice(EMOJI))
            elif x < 0.5:
                parts.append(self.en.word() + r.choice(ZW_CTRL) + self.en.word())
            elif x < 0.6:   # private use, BMP and planes 15-16
                parts.append("".join(chr(r.choice([r.randint(0xE000, 0xF8FF), r.randint(0xF0000, 0xFFFFD),
                                                   r.randint(0x100000, 0x10FFFD)])) for _ in range(r.randint(1, 4))))
            elif x < 0.7:   # noncharacters and unassigned
                parts.append("".join(chr(r.choice([0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0x10FFFF, 0x0378,
                                                   0x0380, 0x2FE0, 0x1B2FF, 0xE0080, 0x40000, 0x3FFFF,
                                                   r.randint(0x30000, 0x3FFFF), r.randint(0xE01F0, 0xEFFFF)]))
                                     for _ in range(r.randint(1, 4))))
            elif x < 0.8:
                parts.append(chr(r.choice(CJK_EDGES)) + r.choice(["", "a", " "]) + chr(r.choice(CJK_EDGES)))
            elif x < 0.9:
                parts.append(r.choice(ZW_CTRL) * r.randint(1, 3))
            else:
                parts.append(self.en.word())
        return self.join(parts)

    def long_word(self, nchars, style):
        """A word of exactly nchars characters after normalisation."""
        r = self.r
        if style == "ascii":
            s = ""
            while len(s) < nchars:
                s += r.choice(self.pieces).lstrip("#")
            s = "".join(c for c in s if c.isascii() and c.isalnum())
            while len(s) < nchars:
                s += r.choice("abcdefghijklmnopqrstuvwxyz0123456789")
            return s[:nchars]
        if style == "accent":   # é counts one character (the mark is dropped)
            return "".join(r.choice(["e\u0301", "é", "a", "ö", "o\u0308", "n"]) for _ in range(nchars))
        if style == "dropped":  # zero-width and control characters do not count
            s = ""
            for _ in range(nchars):
                s += r.choice("abcdefgh") + (r.choice(["\u200b", "\x01", "\u00ad", "\ufeff"]) if r.random() < 0.3 else "")
            return s
        if style == "cyrillic":
            return "".join(chr(r.randint(0x430, 0x44F)) for _ in range(nchars))
        if style == "emoji":
            return "".join(r.choice(["😀", "a", "🦀", "ß"]) for _ in range(nchars))
        raise ValueError(style)

    def length_doc(self):
        r = self.r
        parts = []
        for _ in range(r.randint(1, 6)):
            n = r.choice([98, 99, 99, 100, 100, 100, 101, 101, 102, 150])
            parts.append(self.long_word(n, r.choice(["ascii", "ascii", "accent", "dropped", "cyrillic", "emoji"])))
            if r.random() < 0.3:    # Hangul syllables decompose into 2-3 jamo each
                k = r.choice([33, 34, 49, 50, 51])
                parts.append("".join(chr(r.randint(0xAC00, 0xD7A3)) for _ in range(k)))
            if r.random() < 0.3:    # a long run cut by punctuation or CJK
                parts.append(self.long_word(60, "ascii") + r.choice(["-", "中", "'", "[SEP]"]) + self.long_word(60, "ascii"))
            parts.append(self.en.word())
        return self.join(parts)

    def special_doc(self):
        r = self.r
        parts = []
        for _ in range(r.randint(2, 30)):
            x = r.random()
            s = r.choice(SPECIALS)
            if x < 0.3:
                parts.append(s)
            elif x < 0.45:
                parts.append(self.en.word() + s + self.en.word())
            elif x < 0.55:
                parts.append(r.choice([s.lower(), s.capitalize(), s[:-1], s[1:], s.replace("[", "[ "),
                                       "[" + s, s + "]", "[[" + s[1:], s[:3] + "\u200b" + s[3:],
                                       s[:2] + "\u0301" + s[2:], "\uff3b" + s[1:-1] + "\uff3d"]))
            elif x < 0.65:
                parts.append(s + s + r.choice(SPECIALS))
            elif x < 0.75:
                parts.append(r.choice(["café", "中", "\u0301", "😀", "\x00", "\u200d", "İ"]) + s +
                             r.choice(["café", "中", "\u0301", "😀", "\x00", "\u200d", "İ"]))
            else:
                parts.append(self.en.sentence())
        doc = self.join(parts)
        if r.random() < 0.2:
            doc = r.choice(["[CLS", "[", "[MASK"]) if r.random() < 0.3 else doc + r.choice(["[CLS", "[", "[MAS", "[SEP]"])
        return doc

    def punct_doc(self):
        r = self.r
        parts = []
        for _ in range(r.randint(3, 50)):
            x = r.random()
            if x < 0.4:
                parts.append("".join(r.choice(PUNCT) for _ in range(r.randint(1, 6))))
            elif x < 0.7:
                parts.append(self.en.word() + r.choice(PUNCT) + self.en.word())
            else:
                parts.append(r.choice(["$+<=>^`|~", "a$b+c<d=e>f^g`h|i~j", "e.g.", "U.S.A.", "3.14", "1,000,000",
                                       "$5.99", "50%", "C++", "C#", "foo_bar", "foo@bar.com", "https://x.org/a?b=c&d=e#f",
                                       "--help", "...", "?!", ":-)", "<br/>", "&amp;", "#hashtag", "@user", "~/.bashrc",
                                       "a/b\\c", "{\"k\": [1, 2]}", "'quoted'", "`code`", "x^2", "a|b", "1+1=2"]))
        return self.join(parts)

    def random_cp_doc(self):
        r = self.r
        n = r.randint(5, 400)
        out = []
        for _ in range(n):
            x = r.random()
            if x < 0.35:
                c = r.randint(0, 0x10FFFF)
            elif x < 0.65:
                c = r.randint(0, 0x2FFFF)
            elif x < 0.85:
                c = r.randint(0x80, 0xFFFF)
            else:
                c = r.randint(0x20, 0x7E)
            if 0xD800 <= c <= 0xDFFF:
                c = 0xFFFD
            out.append(chr(c))
            if r.random() < 0.15:
                out.append(" ")
        return "".join(out)

    def long_doc(self):
        r = self.r
        size = r.choice([30_000, 100_000, 250_000, 500_000])
        parts, n = [], 0
        makers = [self.en.document, self.script_doc, self.accent_doc, self.emoji_doc, self.punct_doc,
                  self.special_doc, self.case_doc]
        while n < size:
            p = self.en.document() if r.random() < 0.6 else r.choice(makers)()
            parts.append(p)
            n += len(p)
        return "\n".join(parts)

    def encode_line(self, doc, idx, raw_bad=None):
        """One JSON line (bytes).  raw_bad: (position, bytes) to insert raw."""
        r = self.r
        obj = {"id": idx}
        if r.random() < 0.5:
            obj["warc_headers"] = {"warc-type": "conversion", "content-length": str(len(doc))}
        obj["content"] = doc
        if r.random() < 0.3:
            obj["metadata"] = {"identification": {"label": "en", "prob": 0.9}, "harmful_pp": 12.5}
        text = json.dumps(obj, ensure_ascii=r.random() < 0.3)
        b = text.encode("utf-8", "surrogatepass")
        if raw_bad is not None:
            key = b'"content": "'
            at = b.index(key) + len(key)
            b = b[:at] + raw_bad + b[at:]
        return b

    def invalid_utf8(self):
        r = self.r
        bad = [b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
               b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xc3",
               b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xa0\xa1"]
        s = b""
        for _ in range(r.randint(1, 12)):
            s += self.en.word().encode() + r.choice(bad) + r.choice([b"", b" ", b"abc", "é".encode(), b"\\u00e9"])
        return s

    def corpus(self):
        r = self.r
        plan = ([self.en.document] * 1800 + [self.script_doc] * 1100 + [self.accent_doc] * 450 +
                [self.case_doc] * 300 + [self.emoji_doc] * 450 + [self.length_doc] * 350 +
                [self.special_doc] * 350 + [self.punct_doc] * 300 + [self.random_cp_doc] * 500 +
                [None] * 250 + [self.long_doc] * 6 + ["escape"] * 60)
        r.shuffle(plan)
        lines = []
        for idx, maker in enumerate(plan):
            if maker is None:      # raw invalid UTF-8 inside the string
                lines.append(self.encode_line(self.en.word(), idx, self.invalid_utf8()))
            elif maker == "escape":  # JSON escapes: NUL, pairs, lone surrogates, U+2028
                body = r.choice(["a\\u0000b", "\\ud83d\\ude00x", "x\\udc00y", "\\ud800", "lone \\udbff end",
                                 "\\u2028line\\u2029", "tab\\there\\nnewline", "\\u00C9COLE \\u0130", "\\u4e2d\\u6587",
                                 "[\\u0043LS] [CLS\\u005d", "q\\\"uote\\\\", "\\uD834\\uDD1E music"])
                lines.append(('{"id": %d, "content": "%s %s"}' % (idx, body, self.en.word())).encode())
            else:
                lines.append(self.encode_line(maker(), idx))
        # the edges: empty document, only spaces, only dropped characters
        lines.append(b'{"content": ""}')
        lines.append(b'{"content": "   \\t\\n  "}')
        lines.append(b'{"content": "\\u0000\\u200b\\ufeff\\u0301"}')
        lines.append(self.encode_line("".join(chr(c) for c in CJK_EDGES), len(lines)))
        return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--english-mb", type=float, default=0, help="write this many MB of English documents instead")
    a = ap.parse_args()
    g = Gen(a.vocab)
    with open(a.output, "wb") as f:
        if a.english_mb:
            n, want, idx = 0, int(a.english_mb * 1e6), 0
            while n < want:
                b = json.dumps({"id": idx, "content": g.en.document()}, ensure_ascii=False).encode() + b"\n"
                f.write(b)
                n += len(b)
                idx += 1
        else:
            for line in g.corpus():
                f.write(line + b"\n")


if __name__ == "__main__":
    main()
