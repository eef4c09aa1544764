#!/usr/bin/python3
"""make_corpus.py - an English stand-in for OSCAR-2301 from documentation that Debian ships.

    /usr/bin/python3 experiments/figure2/make_corpus.py -o en_meta_part_1.jsonl.zst ROOT...

ROOT is a folder tree, e.g. Debian packages unpacked with `dpkg-deb -x PKG.deb ROOT`
(run.sh fetches linux-doc-6.1, perl-doc and dict-gcide with `apt-get download`).
Every file under the ROOTs is visited in sorted path order, and three kinds
become documents, one JSON line each, in the shape of OSCAR 23.01's en_meta
files (content, warc_headers, metadata):

  *.rst.txt           reStructuredText sources (Sphinx's _sources/ copies of the
                      kernel's Documentation/): heading adornment lines (a line of
                      one repeated punctuation character) and SPDX lines removed;
  *.pod, *.pod.gz     Perl's POD pages: command paragraphs (=head1 X) kept as their
                      text (X), =over/=back/=cut/=pod/=for/=begin/=end removed,
                      formatting codes B<..> I<..> C<..> L<..> F<..> S<..> reduced
                      to their text, E<lt> E<gt> E<sol> E<verbar> decoded;
  NAME.dict.dz        a dictd database (gzip-compatible) with NAME.index beside it:
                      one document per dictionary entry (its text at the offset
                      and length of the index, base64 numbers), each entry once,
                      in file order, the database's 00-database-* entries skipped.

Everything else is skipped.  Text is decoded as UTF-8 (invalid bytes replaced),
line ends normalised to \\n, trailing spaces stripped, runs of blank lines
collapsed to one; a document with fewer than 64 characters of text is dropped
(a cross-reference entry of the dictionary, an empty page).

The metadata passes oscar-filter's three rules by construction, and says what
is not measured: identification {"label": "en", "prob": 1.0}, harmful_pp 1000.0
(a fixed value inside (5, 100000): these texts were not scored), tlsh null,
quality_warnings null, categories null, sentence_identifications one
{"label": "en", "prob": 1.0} per line (null for blank lines).  warc-record-id
is a UUID derived from the sha256 of the path and entry; warc-target-uri is
file://<path inside the ROOT> (plus #entry-N for dictionary entries).  There is
no clock and no randomness: the same ROOTs give the same bytes.  The output is
zstd-compressed when its name ends in .zst; it appears only when complete
(written to NAME.tmp, fsynced, renamed).  A summary goes to stderr, and with
--stats FILE as JSON (documents and characters per kind, sha256 of the
uncompressed JSON Lines).
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import signal
import sys

MIN_CHARS = 64
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class CorpusError(Exception):
    pass


def b64num(s, where):
    n = 0
    for ch in s:
        i = B64.find(ch)
        if i < 0:
            raise CorpusError("%s: %r is not a dictd base64 number" % (where, s))
        n = n * 64 + i
    return n


def tidy(text):
    """Line ends, trailing spaces, blank-line runs; leading/trailing blank lines dropped."""
    out, blank = [], False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if not line:
            if out and not blank:
                out.append("")
            blank = True
            continue
        blank = False
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")


def rst_text(raw):
    lines = []
    for line in raw.split("\n"):
        if ADORNMENT.match(line.strip()) or line.startswith(".. SPDX-License-Identifier"):
            continue
        lines.append(line)
    return tidy("\n".join(lines))


POD_DROP = re.compile(r"^=(over|back|cut|pod|for|begin|end|encoding)\b")
POD_CMD = re.compile(r"^=(head[1-6]|item)\s*(.*)$")
POD_ESC = {"lt": "<", "gt": ">", "sol": "/", "verbar": "|", "quot": '"', "amp": "&"}
POD_CODE = re.compile(r"[BICLFSXZ]<(?!<)([^<>]*)>")


def pod_text(raw):
    lines = []
    for line in raw.split("\n"):
        if POD_DROP.match(line):
            continue
        m = POD_CMD.match(line)
        if m:
            line = m.group(2)
            if line.strip() in ("*", ""):
                continue
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"E<(\w+)>", lambda m: POD_ESC.get(m.group(1), m.group(0)), text)
    text = re.sub(r"[BICLFSXZ]<<+\s(.*?)\s>>+", r"\1", text)  # B<< code >>
    for _ in range(4):  # nested codes, innermost first
        new = POD_CODE.sub(lambda m: m.group(1).split("|")[0] if m.group(0)[0] == "L" else m.group(1), text)
        if new == text:
            break
        text = new
    return tidy(text)


def dict_entries(dz_path, rel):
    index_path = dz_path[: -len(".dict.dz")] + ".index"
    if not os.path.exists(index_path):
        raise CorpusError("%s: no %s beside it" % (dz_path, os.path.basename(index_path)))
    spans = set()
    with open(index_path, "rb") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip(b"\n").decode("utf-8", "replace").split("\t")
            where = "%s:%d" % (index_path, n)
            if len(parts) < 3:
                raise CorpusError("%s: expected WORD<TAB>OFFSET<TAB>LENGTH" % where)
            if parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            spans.add((b64num(parts[1], where), b64num(parts[2], where)))
    try:
        with gzip.open(dz_path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise CorpusError("%s: not a gzip/dictzip file (%s)" % (dz_path, e))
    for k, (off, length) in enumerate(sorted(spans)):
        if off + length > len(data):
            raise CorpusError("%s: entry at offset %d length %d runs past the end (%d bytes)"
                              % (index_path, off, length, len(data)))
        yield "%s#entry-%d" % (rel, k), tidy(data[off:off + length].decode("utf-8", "replace"))


def read_text(path):
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise CorpusError("%s: not a gzip file (%s)" % (path, e))
    return raw.decode("utf-8", "replace")


def documents(roots):
    """(kind, uri path, text) for every document under the roots, in sorted order."""
    for root in roots:
        if not os.path.isdir(root):
            raise CorpusError("%s: not a folder" % root)
        files = []
        for d, dirs, names in os.walk(root):
            dirs.sort()
            files.extend(os.path.join(d, n) for n in names)
        for path in sorted(files):
            rel = "/" + os.path.relpath(path, root)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if path.endswith(".rst.txt"):
                yield "rst", rel, rst_text(read_text(path))
            elif path.endswith(".pod") or path.endswith(".pod.gz"):
                yield "pod", rel, pod_text(read_text(path))
            elif path.endswith(".dict.dz"):
                for uri, text in dict_entries(path, rel):
                    yield "dict", uri, text


def record(uri, text):
    h = hashlib.sha256(uri.encode()).hexdigest()
    uuid = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
    body = text.encode()
    return {
        "content": text,
        "warc_headers": {
            "warc-record-id": "<urn:uuid:%s>" % uuid,
            "warc-date": "2023-01-01T00:00:00Z",
            "content-type": "text/plain",
            "content-length": str(len(body)),
            "warc-type": "conversion",
            "warc-identified-content-language": "eng",
            "warc-refers-to": "<urn:uuid:%s>" % uuid,
            "warc-target-uri": "file://" + uri,
            "warc-block-digest": "sha1:" + hashlib.sha1(body).hexdigest(),
        },
        "metadata": {
            "identification": {"label": "en", "prob": 1.0},
            "harmful_pp": 1000.0,
            "tlsh": None,
            "quality_warnings": None,
            "categories": None,
            "sentence_identifications": [{"label": "en", "prob": 1.0} if l else None for l in text.split("\n")],
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roots", nargs="+", metavar="ROOT")
    ap.add_argument("-o", "--output", required=True, help="output .jsonl or .jsonl.zst")
    ap.add_argument("--stats", help="write counts as JSON here")
    ap.add_argument("--level", type=int, default=3, help="zstd level (default 3)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = a.output + ".tmp"
    stats = {"documents": 0, "chars": 0, "dropped_short": 0, "by_kind": {}}
    sha = hashlib.sha256()
    try:
        with open(tmp, "wb") as raw:
            if a.output.endswith(".zst"):
                import zstandard
                out = zstandard.ZstdCompressor(level=a.level).stream_writer(raw, closefd=False)
            else:
                out = raw
            for kind, uri, text in documents(a.roots):
                if len(text) < MIN_CHARS:
                    stats["dropped_short"] += 1
                    continue
                line = (json.dumps(record(uri, text), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                out.write(line)
                sha.update(line)
                k = stats["by_kind"].setdefault(kind, {"documents": 0, "chars": 0})
                k["documents"] += 1
                k["chars"] += len(text)
                stats["documents"] += 1
                stats["chars"] += len(text)
            if out is not raw:
                out.close()
            raw.flush()
            os.fsync(raw.fileno())
        if stats["documents"] == 0:
            raise CorpusError("no documents found under %s (looked for *.rst.txt, *.pod[.gz], *.dict.dz)"
                              % " ".join(a.roots))
        os.rename(tmp, a.output)
    except (CorpusError, OSError) as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        print("make_corpus: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if os.path.exists(tmp):
            os.unlink(tmp)
        return 130
    stats["jsonl_sha256"] = sha.hexdigest()
    if a.stats:
        with open(a.stats + ".tmp", "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(a.stats + ".tmp", a.stats)
    kinds = ", ".join("%s %d" % (k, v["documents"]) for k, v in sorted(stats["by_kind"].items()))
    print("make_corpus: %d documents (%s), %.1f M characters, %d too short; sha256 %s -> %s"
          % (stats["documents"], kinds, stats["chars"] / 1e6, stats["dropped_short"], sha.hexdigest()[:16],
             a.output), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
