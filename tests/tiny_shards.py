# tiny_shards.py DIR [SEED [SEQ VOCAB TRAIN VAL]]: a shard-pack folder of random ids
# ([CLS] ids [SEP] samples), written from the format with the standard library only (no
# numpy: GPU machines' system Python may lack it).  Defaults: seed 7, 16 tokens a sample,
# vocab 160, 96 train and 9 validation samples (the tests); bench/train_dp_bench.sh asks
# for 512 tokens of the 30522-id vocab.
import hashlib, json, os, random, struct, sys
out = sys.argv[1]
seed, seq, vocab, ntrain, nval = ([int(x) for x in sys.argv[2:7]] + [7, 16, 160, 96, 9][len(sys.argv[2:7]):])
rng = random.Random(seed)
os.makedirs(out, exist_ok=True)
def shard(name, n):
    head = "{'descr': '<u2', 'fortran_order': False, 'shape': (%d, %d), }" % (n, seq)
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    parts = [b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode()]
    row = struct.Struct("<%dH" % seq)
    for _ in range(n):
        parts.append(row.pack(101, *[rng.randrange(104, vocab) for _ in range(seq - 2)], 102))
    data = b"".join(parts)
    open(os.path.join(out, name), "wb").write(data)
    return {"name": name, "split": name.split("-")[0], "samples": n, "sha256": hashlib.sha256(data).hexdigest()}
s = [shard("train-00000.npy", ntrain), shard("validation-00000.npy", nval)]
n = ntrain + nval
json.dump({"format": "symbert-shards", "version": 1, "seq_len": seq, "vocab_size": vocab, "vocab_sha256": "0" * 64,
           "shards": s, "totals": {"documents": n, "tokens": n * seq, "samples": n, "train_samples": ntrain,
                                   "validation_samples": nval, "dropped_tail_tokens": 0}},
          open(os.path.join(out, "manifest.json"), "w"))
