# tiny_shards.py DIR [SEED]: a shard-pack folder of random ids (vocab 160, 16 tokens a
# sample, 96 train and 9 validation samples) written from the format with the standard
# library only (no numpy: GPU machines' system Python may lack it).
import hashlib, json, os, random, struct, sys
out = sys.argv[1]
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
os.makedirs(out, exist_ok=True)
def shard(name, n):
    rows = [[101] + [rng.randrange(104, 160) for _ in range(14)] + [102] for _ in range(n)]
    head = "{'descr': '<u2', 'fortran_order': False, 'shape': (%d, 16), }" % n
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode()
    data += b"".join(struct.pack("<16H", *r) for r in rows)
    open(os.path.join(out, name), "wb").write(data)
    return {"name": name, "split": name.split("-")[0], "samples": n, "sha256": hashlib.sha256(data).hexdigest()}
s = [shard("train-00000.npy", 96), shard("validation-00000.npy", 9)]
json.dump({"format": "symbert-shards", "version": 1, "seq_len": 16, "vocab_size": 160, "vocab_sha256": "0" * 64,
           "shards": s, "totals": {"documents": 105, "tokens": 105 * 16, "samples": 105, "train_samples": 96,
                                   "validation_samples": 9, "dropped_tail_tokens": 0}},
          open(os.path.join(out, "manifest.json"), "w"))
