#!/usr/bin/env python3
"""bench/torch_bert_bench.py - the PyTorch baseline that bench/train_bench.sh (one GPU) and
bench/train_dp_bench.sh (data parallel) compare bert-train with.

    python3 bench/torch_bert_bench.py [MICRO_BATCH [STEPS [SIZES]]] [--kinds K,..] [--no-hf]
    torchrun --nproc-per-node N bench/torch_bert_bench.py --ddp --batch 256 32 20 base

What it times: BERT MLM pre-training updates, seq 512, bf16 autocast, on random ids with 15%
of positions masked (the work of an update does not depend on the text).  Two models:

  compact   the paper's BERT (post-LN, GELU, tied decoder with its own bias, no pooler) in a
            few lines of PyTorch, attention by scaled_dot_product_attention (flash), the three
            variants (original: Q K^T; symmetric: Q Q^T, no key projection; pairwise: (Q S_h) Q^T
            with S_h [heads, d, d]), torch.compile, fused AdamW.  Its parameter counts are
            printed and checked against the paper's Table 2.
  hf        Hugging Face transformers' BertForMaskedLM (original attention, SDPA), eager and
            compiled, the model most people would start from.

Both compute the decoder over every position, as BertForMaskedLM does.  Timing: 4 updates
to warm up (and compile), then STEPS updates between two synchronisations.

Output: one JSON line per figure (the keys bench/train_bench.sh reads):
  {"params": size, "kind": k, "n": N, "table2": true}
  {"model": "compact+sdpa+compile", "size": .., "kind": .., "B": micro, "tok_s": .., "s_per_step": .., "mem_GB": ..}
  {"model": "hf BertForMaskedLM sdpa eager|compile", "size": "base", "B": .., "tok_s": .., ...}
With --ddp (under torchrun: one process per GPU, DistributedDataParallel, NCCL): --batch is the
global batch of one update, split over the ranks and accumulated in micro-batches of
MICRO_BATCH (no_sync on all but the last); rank 0 prints
  {"model": "compact+sdpa+compile ddp", "world": N, "size": .., "kind": .., "batch": .., "B": micro, "tok_s": ..}
"""
import argparse
import contextlib
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {"small": (4, 512, 8, 2048), "base": (12, 768, 12, 3072)}  # layers, hidden, heads, FFN
VOCAB, POSITIONS, TYPES, SEQ, MASK_ID = 30522, 512, 2, 512, 103
# the paper's Table 2 (BertForMaskedLM with tied decoder, no pooler)
TABLE2 = {("small", "original"): 28795194, ("small", "symmetric"): 27744570, ("small", "pairwise"): 27875642,
          ("base", "original"): 109514298, ("base", "symmetric"): 102427194, ("base", "pairwise"): 103017018}


class SelfAttention(nn.Module):
    """Post-LN attention block: x + dropout(dense(attn(x))), then LayerNorm."""

    def __init__(self, hidden, heads, kind):
        super().__init__()
        self.heads, self.d, self.kind = heads, hidden // heads, kind
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden) if kind == "original" else None
        self.value = nn.Linear(hidden, hidden)
        self.pairwise = nn.Parameter(torch.randn(heads, self.d, self.d)) if kind == "pairwise" else None
        self.out = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)

    def split(self, t):
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.d).transpose(1, 2)

    def forward(self, x):
        q = self.split(self.query(x))
        v = self.split(self.value(x))
        k = self.split(self.key(x)) if self.key is not None else q
        if self.pairwise is not None:
            q = torch.matmul(q, self.pairwise)  # (Q S_h) Q^T: the factor joins the query side
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1 if self.training else 0.0)
        a = a.transpose(1, 2).flatten(2)
        return self.norm(x + F.dropout(self.out(a), 0.1, self.training))


class Block(nn.Module):
    def __init__(self, hidden, heads, ffn, kind):
        super().__init__()
        self.attention = SelfAttention(hidden, heads, kind)
        self.up = nn.Linear(hidden, ffn)
        self.down = nn.Linear(ffn, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x):
        x = self.attention(x)
        return self.norm(x + F.dropout(self.down(F.gelu(self.up(x))), 0.1, self.training))


class CompactBert(nn.Module):
    def __init__(self, size, kind):
        super().__init__()
        layers, hidden, heads, ffn = SIZES[size]
        self.word = nn.Embedding(VOCAB, hidden)
        self.position = nn.Embedding(POSITIONS, hidden)
        self.token_type = nn.Embedding(TYPES, hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.blocks = nn.ModuleList(Block(hidden, heads, ffn, kind) for _ in range(layers))
        self.head = nn.Linear(hidden, hidden)
        self.head_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.decoder_bias = nn.Parameter(torch.zeros(VOCAB))
        for name, p in self.named_parameters():  # HF's init: N(0, 0.02), zero biases, LN 1
            if name.endswith("pairwise"):
                continue
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)
            elif "norm" not in name:
                nn.init.zeros_(p)

    def forward(self, ids, labels):
        n = ids.shape[1]
        x = self.word(ids) + self.position.weight[:n] + self.token_type.weight[0]
        x = F.dropout(self.embed_norm(x), 0.1, self.training)
        for b in self.blocks:
            x = b(x)
        h = self.head_norm(F.gelu(self.head(x)))
        logits = F.linear(h, self.word.weight, self.decoder_bias)  # tied decoder
        return F.cross_entropy(logits.float().view(-1, VOCAB), labels.view(-1), ignore_index=-100)


def masked_batch(b, device, gen):
    ids = torch.randint(1000, VOCAB, (b, SEQ), device=device, generator=gen)
    chosen = torch.rand(b, SEQ, device=device, generator=gen) < 0.15
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return ids.masked_fill(chosen, MASK_ID), labels


def time_updates(model, params, micro, accum, steps, device, hf=False, ddp=None):
    """tokens/s of this process and seconds per update, over `steps` timed updates"""
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-12, weight_decay=0.01, fused=True)
    gen = torch.Generator(device=device)
    gen.manual_seed(1234 + (ddp or 0))
    batches = [masked_batch(micro, device, gen) for _ in range(accum)]

    def update():
        for i, (ids, labels) in enumerate(batches):
            last = i == accum - 1
            ctx = model.no_sync() if (ddp is not None and not last) else contextlib.nullcontext()
            with ctx, torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=labels).loss if hf else model(ids, labels)
            (loss / accum).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(4):
        update()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        update()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return micro * accum * SEQ * steps / dt, dt / steps


def emit(rank, row):
    if rank == 0:
        print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("micro", nargs="?", type=int, default=32, help="micro-batch per GPU (32)")
    ap.add_argument("steps", nargs="?", type=int, default=20, help="timed updates per figure (20)")
    ap.add_argument("sizes", nargs="?", default="base,small", help="base,small")
    ap.add_argument("--kinds", default="original,symmetric,pairwise")
    ap.add_argument("--no-hf", action="store_true", help="skip Hugging Face BertForMaskedLM")
    ap.add_argument("--ddp", action="store_true", help="DistributedDataParallel under torchrun")
    ap.add_argument("--batch", type=int, default=0, help="with --ddp: the global batch of an update (256)")
    a = ap.parse_args()
    sizes = [s for s in a.sizes.split(",") if s]
    kinds = [k for k in a.kinds.split(",") if k]
    for s in sizes:
        if s not in SIZES:
            sys.exit("torch_bert_bench: unknown size %r (base, small)" % s)
    for k in kinds:
        if k not in ("original", "symmetric", "pairwise"):
            sys.exit("torch_bert_bench: unknown attention %r" % k)

    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    rank, world = 0, 1
    if a.ddp:
        import torch.distributed as dist
        dist.init_process_group("nccl")
        rank, world = dist.get_rank(), dist.get_world_size()
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        batch = a.batch or 256
        if batch % (world * a.micro):
            sys.exit("torch_bert_bench: --batch %d is not a multiple of %d ranks x micro-batch %d" % (batch, world, a.micro))
        accum = batch // (world * a.micro)
    else:
        accum = 1
    emit(rank, {"torch": torch.__version__, "device": torch.cuda.get_device_name()})
    for s in sizes:
        for k in kinds:
            n = sum(p.numel() for p in CompactBert(s, k).parameters())
            emit(rank, {"params": s, "kind": k, "n": n, "table2": n == TABLE2[(s, k)]})
    for s in sizes:
        for k in kinds:
            torch.manual_seed(0)
            model = CompactBert(s, k).to(device).train()
            params = list(model.parameters())
            if a.ddp:
                from torch.nn.parallel import DistributedDataParallel
                run = torch.compile(DistributedDataParallel(model, device_ids=[torch.cuda.current_device()],
                                                            gradient_as_bucket_view=True))
                tps, spt = time_updates(run, params, a.micro, accum, a.steps, device, ddp=rank)
                emit(rank, {"model": "compact+sdpa+compile ddp", "world": world, "size": s, "kind": k,
                            "batch": a.micro * accum * world, "B": a.micro, "tok_s": round(tps * world),
                            "s_per_step": round(spt, 4)})
            else:
                tps, spt = time_updates(torch.compile(model), params, a.micro, 1, a.steps, device)
                emit(rank, {"model": "compact+sdpa+compile", "size": s, "kind": k, "B": a.micro, "tok_s": round(tps),
                            "s_per_step": round(spt, 4), "mem_GB": round(torch.cuda.max_memory_allocated() / 1e9, 1)})
            del model, params
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    if a.ddp:
        torch.distributed.destroy_process_group()
        return
    if a.no_hf:
        return
    try:
        from transformers import BertConfig, BertForMaskedLM
    except ImportError as e:
        print("torch_bert_bench: transformers not importable (%s): no Hugging Face figures" % e, file=sys.stderr)
        return
    layers, hidden, heads, ffn = SIZES["base"]
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=ffn, attn_implementation="sdpa")
    for compiled in (False, True):
        torch.manual_seed(0)
        hf = BertForMaskedLM(cfg).to(device).train()
        params = list(hf.parameters())
        tps, spt = time_updates(torch.compile(hf) if compiled else hf, params, a.micro, 1, a.steps, device, hf=True)
        emit(rank, {"model": "hf BertForMaskedLM sdpa " + ("compile" if compiled else "eager"), "size": "base",
                    "B": a.micro, "tok_s": round(tps), "s_per_step": round(spt, 4)})
        del hf, params
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
