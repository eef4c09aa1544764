# st_close.py A B [TOL]: every tensor of two F32 safetensors files within TOL (1e-5) relative:
# |a - b| / |b| in the 2-norm, tensor by tensor.  Standard library only.  Exit 0 / 1.
import array, json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    out = {}
    for k, v in json.loads(b[8:8 + n]).items():
        if k == "__metadata__": continue
        a = array.array("f"); a.frombytes(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
        out[k] = a
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
if a.keys() != b.keys(): sys.exit("the tensor names differ")
def rel(x, y):
    d = math.sqrt(sum((p - q) * (p - q) for p, q in zip(x, y)))
    return d / max(math.sqrt(sum(q * q for q in y)), 1e-30)
worst = max((rel(a[k], b[k]), k) for k in a)
print("worst relative difference %.3g (%s) over %d tensors" % (worst[0], worst[1], len(a)))
sys.exit(0 if worst[0] <= tol else 1)
