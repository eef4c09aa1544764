"""tests/tokstream.py - writes wordpiece token streams (pipeline/tokstream.h)
from Python, independently of the C writer: header, records, trailer."""
import struct

MASK = (1 << 64) - 1


def checksum(docs):
    """FNV-1a 64 over values: each record's length, then its ids."""
    h = 0xcbf29ce484222325
    for ids in docs:
        h = ((h ^ len(ids)) * 0x100000001b3) & MASK
        for i in ids:
            h = ((h ^ i) * 0x100000001b3) & MASK
    return h


def header(vocab_size, sha, version=2):
    return b'SBTK' + struct.pack('<III', version, vocab_size, 0) + sha


def record(ids):
    return struct.pack('<I', len(ids)) + struct.pack('<%dH' % len(ids), *ids)


def trailer(docs):
    return b'SBTE' + struct.pack('<IQQQ', 0, len(docs), sum(len(d) for d in docs), checksum(docs))


def stream(vocab_size, sha, docs, with_trailer=True):
    return header(vocab_size, sha) + b''.join(record(d) for d in docs) + (trailer(docs) if with_trailer else b'')
