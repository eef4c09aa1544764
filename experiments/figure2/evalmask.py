"""evalmask.py - bert-train's fixed validation masks, in NumPy.

bert-train masks validation sample i (the i-th sample of the validation shards)
with the counter-based stream of trainer/model.h: key = bt_key(eval_seed,
BT_RNG_MASK, BT_EVAL_STEP, i, 0); position t is chosen iff its id is not
[PAD]/[CLS]/[SEP] and uniform(key, 4t) < 0.15f; a chosen position becomes
[MASK] if uniform(key, 4t+1) < 0.8f, else a random id (rand32(key, 4t+3) *
vocab >> 32) if uniform(key, 4t+2) < 0.5f, else stays.  This file computes the
same masks, so that torch_mlm.py evaluates on exactly the masked positions that
bert-train does (tests/figure2_test.sh compares it with model.h's functions).
"""
import numpy as np

M64 = (1 << 64) - 1
GOLDEN = 0x9e3779b97f4a7c15
RNG_MASK = 2
EVAL_STEP = M64
PAD, CLS, SEP, MASK = 0, 101, 102, 103


def _mix64_int(x):
    x &= M64
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & M64
    x ^= x >> 31
    return x


def bt_key(seed, tag, a, b, c):
    k = _mix64_int(seed + GOLDEN * (tag + 1))
    k = _mix64_int(k ^ ((a + 0x632be59bd9b4e019) & M64))
    k = _mix64_int(k ^ ((b + 0x8cb92ba72f3d8dd7) & M64))
    k = _mix64_int(k ^ ((c + 0xd1b54a32d192ed03) & M64))
    return k


def _mix64(x):
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xbf58476d1ce4e5b9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94d049bb133111eb)
        x = x ^ (x >> np.uint64(31))
    return x


def _rand32(key, counters):
    with np.errstate(over="ignore"):
        x = np.uint64(key) + np.uint64(GOLDEN) * (counters + np.uint64(1))
    return _mix64(x) >> np.uint64(32)


def _uniform(key, counters):
    return (_rand32(key, counters) >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def mask_sample(ids, key, vocab_size):
    """(inputs, labels) of one sample, as bt_mask_batch writes them (labels -100 where not chosen)."""
    ids = np.asarray(ids, dtype=np.int64)
    t = np.arange(ids.shape[0], dtype=np.uint64) * np.uint64(4)
    chosen = (_uniform(key, t) < np.float32(0.15)) & (ids != PAD) & (ids != CLS) & (ids != SEP)
    to_mask = _uniform(key, t + np.uint64(1)) < np.float32(0.8)
    to_rand = _uniform(key, t + np.uint64(2)) < np.float32(0.5)
    rand_id = ((_rand32(key, t + np.uint64(3)) * np.uint64(vocab_size)) >> np.uint64(32)).astype(np.int64)
    inputs = np.where(chosen & to_mask, MASK, np.where(chosen & to_rand, rand_id, ids))
    labels = np.where(chosen, ids, -100)
    return inputs, labels


def eval_masks(samples, vocab_size, eval_seed=0):
    """Masks of validation samples 0..n-1 (samples: [n, seq_len] ids)."""
    inputs = np.empty(samples.shape, dtype=np.int64)
    labels = np.empty(samples.shape, dtype=np.int64)
    for i in range(samples.shape[0]):
        key = bt_key(eval_seed, RNG_MASK, EVAL_STEP, i, 0)
        inputs[i], labels[i] = mask_sample(samples[i], key, vocab_size)
    return inputs, labels
