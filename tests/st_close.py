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
for k in a:
    if len(a[k]) != len(b[k]): sys.exit("%s: %d values against %d" % (k, len(a[k]), len(b[k])))
def rel(x, y):
    d = math.sqrt(sum((p - q) * (p - q) for p, q in zip(x, y)))
    return d / max(math.sqrt(sum(q * q for q in y)), 1e-30)
diffs = [(rel(a[k], b[k]), k) for k in a]
bad = [k for d, k in diffs if not d <= tol]   # a NaN difference is bad too
worst = max(diffs, key=lambda x: math.inf if math.isnan(x[0]) else x[0])
print("worst relative difference %.3g (%s) over %d tensors" % (worst[0], worst[1], len(a)))
if bad: print("beyond %g: %s" % (tol, ", ".join(bad[:8])))
sys.exit(1 if bad else 0)
