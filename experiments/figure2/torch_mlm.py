#!/usr/bin/env python3
"""torch_mlm.py - the PyTorch reference of Figure 2's recipe, on bert-train's shards.

    python3 experiments/figure2/torch_mlm.py --data SHARDS --out RUN --attention pairwise \\
        --config small --steps 1200 --batch 128 --lr 5e-4 --warmup 120 --eval-every 100 --seed 1

Trains BERT MLM as Hugging Face's BertForMaskedLM does, with the attention of
the authors' plpi package (original: Q K^T; symmetric: Q Q^T, the query Linear
applied again as the key; pairwise: Q S_h Q^T, S = pairwise_factors [heads,
d, d] initialised N(0, 1)); scores / sqrt(d), softmax, attention dropout 0.1;
post-LN blocks, GELU (erf), LayerNorm eps 1e-12, hidden dropout 0.1; MLM head
dense + GELU + LayerNorm and a decoder tied to the word embeddings plus its
bias; init normal(0, 0.02), zero biases, the [PAD] row zero and without input
gradient (padding_idx).  The model is tests/torch_reference.py's (which checks
it against transformers.BertForMaskedLM to 1e-6), with attention through
scaled_dot_product_attention and the head evaluated at the masked positions
only (the same loss as full logits with ignore_index -100).

Recipe (Hugging Face Trainer + DataCollatorForLanguageModeling): AdamW betas
(0.9, 0.999), eps 1e-12, weight decay 0.01 on every parameter except biases
and LayerNorm weights; linear warm-up to --lr over --warmup steps, then linear
decay to 0 at --steps (get_linear_schedule_with_warmup); gradient norm clipped
at 1.0; bf16 autocast on CUDA; 15% of the non-special tokens chosen, 80%
[MASK] / 10% random id / 10% kept, drawn anew every time (torch's generator,
seeded by --seed); samples in a seeded random order per epoch.

Evaluation every --eval-every steps (and at step 0), dropout off, on the first
--eval-samples validation samples with bert-train's own fixed masks
(evalmask.py, eval seed 0): both trainers are scored on the same positions.
The eval loss is the mean cross-entropy over all masked positions.

Writes RUN/metrics.jsonl in bert-train's format ({"step", "loss", "eval_loss",
"lr", "grad_norm", "elapsed_s"}; one row per --log-every steps and at every
evaluation), whole rows flushed as they come; RUN must not hold a metrics.jsonl
yet.  Needs torch and numpy; a GPU (cuda) unless --device cpu.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evalmask  # noqa: E402

CONFIGS = {
    "tiny": dict(layers=2, heads=2, hidden=128, ffn=512),
    "small": dict(layers=4, heads=8, hidden=512, ffn=2048),
    "base": dict(layers=12, heads=12, hidden=768, ffn=3072),
}
VOCAB, POSITIONS, EPS, DROP = 30522, 512, 1e-12, 0.1


def load_split(data, split):
    try:
        man = json.load(open(os.path.join(data, "manifest.json")))
    except (OSError, ValueError) as e:
        sys.exit("torch_mlm: %s/manifest.json: %s" % (data, e))
    if man.get("vocab_size") != VOCAB:
        sys.exit("torch_mlm: %s/manifest.json: vocab_size %s, expected %d" % (data, man.get("vocab_size"), VOCAB))
    arrs = [np.load(os.path.join(data, s["name"]), mmap_mode="r") for s in man["shards"] if s["split"] == split]
    if not arrs:
        sys.exit("torch_mlm: %s: no %s shards" % (data, split))
    return np.concatenate(arrs) if len(arrs) > 1 else arrs[0]


class Bert(torch.nn.Module):
    """BertForMaskedLM (plpi attention variants) as flat parameters with Hugging Face names."""

    def __init__(self, cfg, variant):
        super().__init__()
        self.variant, self.cfg = variant, cfg
        h, f, H = cfg["hidden"], cfg["ffn"], cfg["heads"]
        self.p = torch.nn.ParameterDict()
        def add(name, *shape, kind="w"):
            t = torch.empty(*shape)
            if kind == "w":
                torch.nn.init.normal_(t, 0.0, 0.02)
            elif kind == "one":
                t.fill_(1.0)
            elif kind == "n01":
                torch.nn.init.normal_(t, 0.0, 1.0)
            else:
                t.zero_()
            self.p[name.replace(".", "__")] = torch.nn.Parameter(t)
        add("bert.embeddings.word_embeddings.weight", VOCAB, h)
        with torch.no_grad():
            self.P("bert.embeddings.word_embeddings.weight")[0].zero_()
        add("bert.embeddings.position_embeddings.weight", POSITIONS, h)
        add("bert.embeddings.token_type_embeddings.weight", 2, h)
        add("bert.embeddings.LayerNorm.weight", h, kind="one")
        add("bert.embeddings.LayerNorm.bias", h, kind="zero")
        for l in range(cfg["layers"]):
            p = "bert.encoder.layer.%d." % l
            names = ["query", "value"] + (["key"] if variant == "original" else [])
            for n in names:
                add(p + "attention.self.%s.weight" % n, h, h)
                add(p + "attention.self.%s.bias" % n, h, kind="zero")
            if variant == "pairwise":
                add(p + "attention.self.pairwise_factors", H, h // H, h // H, kind="n01")
            add(p + "attention.output.dense.weight", h, h)
            add(p + "attention.output.dense.bias", h, kind="zero")
            add(p + "attention.output.LayerNorm.weight", h, kind="one")
            add(p + "attention.output.LayerNorm.bias", h, kind="zero")
            add(p + "intermediate.dense.weight", f, h)
            add(p + "intermediate.dense.bias", f, kind="zero")
            add(p + "output.dense.weight", h, f)
            add(p + "output.dense.bias", h, kind="zero")
            add(p + "output.LayerNorm.weight", h, kind="one")
            add(p + "output.LayerNorm.bias", h, kind="zero")
        add("cls.predictions.transform.dense.weight", h, h)
        add("cls.predictions.transform.dense.bias", h, kind="zero")
        add("cls.predictions.transform.LayerNorm.weight", h, kind="one")
        add("cls.predictions.transform.LayerNorm.bias", h, kind="zero")
        add("cls.predictions.bias", VOCAB, kind="zero")

    def P(self, name):
        return self.p[name.replace(".", "__")]

    def named(self):
        return [(k.replace("__", "."), v) for k, v in self.p.items()]

    def forward(self, ids, labels):
        """Sum of the masked positions' cross-entropy, and their count."""
        cfg, P = self.cfg, self.P
        h, H = cfg["hidden"], cfg["heads"]
        d = h // H
        B, T = ids.shape
        drop = DROP if self.training else 0.0
        wte = P("bert.embeddings.word_embeddings.weight")
        x = F.embedding(ids, wte, padding_idx=0)
        x = x + P("bert.embeddings.position_embeddings.weight")[:T] + P("bert.embeddings.token_type_embeddings.weight")[0]
        x = F.layer_norm(x, (h,), P("bert.embeddings.LayerNorm.weight"), P("bert.embeddings.LayerNorm.bias"), EPS)
        x = F.dropout(x, drop, self.training)
        heads = lambda t: t.view(B, T, H, d).transpose(1, 2)
        for l in range(cfg["layers"]):
            p = "bert.encoder.layer.%d." % l
            lin = lambda name, inp: F.linear(inp, P(p + name + ".weight"), P(p + name + ".bias"))
            q = heads(lin("attention.self.query", x))
            v = heads(lin("attention.self.value", x))
            if self.variant == "original":
                k = heads(lin("attention.self.key", x))
            else:  # plpi: the query Linear applied again (one weight, both uses' gradients)
                k = heads(lin("attention.self.query", x))
            if self.variant == "pairwise":
                q = q @ P(p + "attention.self.pairwise_factors").to(q.dtype)
            ctx = attention(q, k, v, drop, self.training)
            ctx = ctx.transpose(1, 2).reshape(B, T, h)
            a = F.dropout(lin("attention.output.dense", ctx), drop, self.training)
            a = F.layer_norm(a + x, (h,), P(p + "attention.output.LayerNorm.weight"),
                             P(p + "attention.output.LayerNorm.bias"), EPS)
            f = F.dropout(lin("output.dense", F.gelu(lin("intermediate.dense", a))), drop, self.training)
            x = F.layer_norm(f + a, (h,), P(p + "output.LayerNorm.weight"), P(p + "output.LayerNorm.bias"), EPS)
        sel = labels.view(-1) != -100
        xm = x.reshape(B * T, h)[sel]
        t = F.gelu(F.linear(xm, P("cls.predictions.transform.dense.weight"), P("cls.predictions.transform.dense.bias")))
        t = F.layer_norm(t, (h,), P("cls.predictions.transform.LayerNorm.weight"),
                         P("cls.predictions.transform.LayerNorm.bias"), EPS)
        logits = F.linear(t, wte, P("cls.predictions.bias"))
        loss_sum = F.cross_entropy(logits.float(), labels.view(-1)[sel], reduction="sum")
        return loss_sum, int(sel.sum().item())


def attention(q, k, v, drop, training):
    """softmax(q k^T / sqrt(d)) v with dropout on the probabilities (SDPA where torch has it)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=drop if training else 0.0)
    probs = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1)  # torch < 2.0
    return F.dropout(probs, drop, training) @ v


def mask_batch(ids, gen):
    """DataCollatorForLanguageModeling(mlm_probability=0.15) on a [B, T] int64 batch."""
    special = (ids == 0) | (ids == 101) | (ids == 102)
    prob = torch.full(ids.shape, 0.15, device=ids.device)
    chosen = torch.bernoulli(prob, generator=gen).bool() & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    to_mask = torch.bernoulli(torch.full(ids.shape, 0.8, device=ids.device), generator=gen).bool() & chosen
    inputs[to_mask] = 103
    to_rand = torch.bernoulli(torch.full(ids.shape, 0.5, device=ids.device), generator=gen).bool() & chosen & ~to_mask
    rand = torch.randint(VOCAB, ids.shape, device=ids.device, generator=gen)
    inputs[to_rand] = rand[to_rand]
    return inputs, labels


def main():
    ap = argparse.ArgumentParser(description="PyTorch reference of Figure 2's recipe (see the file's header)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--attention", choices=["original", "symmetric", "pairwise"], default="original")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=0, help="sequences per forward/backward (0: --batch)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=120)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-samples", type=int, default=0, help="0: all validation samples")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    mb = a.micro_batch or a.batch
    if a.batch % mb:
        sys.exit("torch_mlm: --batch %d is not a multiple of --micro-batch %d" % (a.batch, mb))
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_mlm: no CUDA device (use --device cpu)")
    mpath = os.path.join(a.out, "metrics.jsonl")
    if os.path.exists(mpath):
        sys.exit("torch_mlm: %s exists: this run folder already holds a run" % mpath)

    train = load_split(a.data, "train")
    val = np.asarray(load_split(a.data, "validation"))
    if a.eval_samples:
        val = val[:a.eval_samples]
    vin, vlab = evalmask.eval_masks(val, VOCAB, 0)
    vin, vlab = torch.from_numpy(vin), torch.from_numpy(vlab)
    N = train.shape[0]

    torch.manual_seed(a.seed)
    model = Bert(CONFIGS[a.config], a.attention).to(dev)
    decay = [p for n, p in model.named() if not (n.endswith(".bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named() if n.endswith(".bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-12, **({"fused": True} if dev.type == "cuda" else {}))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: k / max(1, a.warmup) if k < a.warmup else max(0.0, (a.steps - k) / max(1, a.steps - a.warmup)))
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed)
    cpu_gen = torch.Generator()
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=(dev.type == "cuda"))

    def evaluate():
        model.eval()
        tot, cnt = 0.0, 0
        with torch.no_grad(), amp:
            for i in range(0, vin.shape[0], mb):
                s, c = model(vin[i:i + mb].to(dev), vlab[i:i + mb].to(dev))
                tot += s.item()
                cnt += c
        model.train()
        return tot / cnt

    order, epoch = None, -1
    os.makedirs(a.out, exist_ok=True)
    out = open(mpath, "w")
    def row(r):
        out.write(json.dumps(r) + "\n")
        out.flush()
    row({"step": 0, "eval_loss": evaluate()})
    elapsed, t0 = 0.0, time.time()
    for step in range(1, a.steps + 1):
        g0 = (step - 1) * a.batch
        idx = []
        for g in range(g0, g0 + a.batch):
            if g // N != epoch:
                epoch = g // N
                cpu_gen.manual_seed(a.seed * 1000003 + epoch)
                order = torch.randperm(N, generator=cpu_gen).numpy()
            idx.append(order[g % N])
        ids = torch.from_numpy(np.asarray(train[np.sort(idx)], dtype=np.int64)).to(dev, non_blocking=True)
        inputs, labels = mask_batch(ids, gen)
        n_masked = int((labels != -100).sum().item())
        lr = opt.param_groups[0]["lr"]
        loss_tot = 0.0
        for i in range(0, a.batch, mb):
            with amp:
                s, _ = model(inputs[i:i + mb], labels[i:i + mb])
            (s / n_masked).backward()
            loss_tot += s.item()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = loss_tot / n_masked
        if not math.isfinite(loss) or not math.isfinite(gn):
            sys.exit("torch_mlm: step %d: loss is %s; stopping" % (step, loss))
        ev = step % a.eval_every == 0 or step == a.steps if a.eval_every else step == a.steps
        if step % a.log_every == 0 or ev:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            elapsed += time.time() - t0
            r = {"step": step, "loss": loss}
            if ev:
                r["eval_loss"] = evaluate()
            r.update({"lr": lr, "grad_norm": gn, "elapsed_s": round(elapsed, 3)})
            row(r)
            t0 = time.time()
    out.close()
    print("torch_mlm: %s %s seed %d: %d steps, eval loss %.4f, %.1f s" % (a.config, a.attention, a.seed, a.steps,
                                                                         r.get("eval_loss", float("nan")), elapsed),
          file=sys.stderr)


if __name__ == "__main__":
    main()
