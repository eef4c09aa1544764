#!/usr/bin/env python3
"""torch_reference.py IN OUT - reference loss, logits and gradients from PyTorch.

IN holds, per attention variant (original, symmetric, pairwise), what
`trainer_torch_test --write IN` wrote: model.safetensors (our checkpoint
format), config.json and batch.json (masked input ids and labels).  For each
variant this script builds the model in plain PyTorch with the semantics of
the authors' plpi package (a copy of Hugging Face's modeling_bert in which
the symmetric and pairwise self-attention apply the *query* Linear a second
time to get the key, and pairwise computes query @ pairwise_factors @ key^T;
scores / sqrt(d); post-LN; GELU (erf); MLM head dense + GELU + LayerNorm and
a decoder tied to the word embeddings plus its bias; nn.Embedding with
padding_idx = pad_token_id), dropout off, loads our weights, runs the batch
and writes to OUT:
  torch_<variant>.safetensors   "grad.<name>" for every parameter
  torch_<variant>.json          loss (mean cross-entropy over masked
                                positions), n_masked, logits at the masked
                                positions in order, and diagnostics
For the original variant it also loads the same checkpoint into
transformers.BertForMaskedLM (from_pretrained, eager attention) and records
how far that model's loss, logits and gradients are from the plain one:
this pins the plain model to Hugging Face's semantics.

Runs where torch and safetensors are installed (the GPU machine); computes
on the CPU in float32 (and float64 for a diagnostic).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

VARIANTS = ["original", "symmetric", "pairwise"]


def model_loss(P, cfg, variant, ids, labels):
    """Plain forward pass; P maps Hugging Face names to leaf tensors."""
    h, H = cfg["hidden_size"], cfg["num_attention_heads"]
    d, L, eps = h // H, cfg["num_hidden_layers"], cfg["layer_norm_eps"]
    B, T = ids.shape
    wte = P["bert.embeddings.word_embeddings.weight"]
    x = F.embedding(ids, wte, padding_idx=cfg["pad_token_id"])
    x = x + P["bert.embeddings.position_embeddings.weight"][:T] + P["bert.embeddings.token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (h,), P["bert.embeddings.LayerNorm.weight"], P["bert.embeddings.LayerNorm.bias"], eps)

    def heads(t):
        return t.view(B, T, H, d).permute(0, 2, 1, 3)

    for l in range(L):
        p = "bert.encoder.layer.%d." % l
        lin = lambda name, inp: F.linear(inp, P[p + name + ".weight"], P[p + name + ".bias"])
        q = heads(lin("attention.self.query", x))
        if variant == "original":
            k = heads(lin("attention.self.key", x))
        else:  # plpi: self.query(hidden_states) again
            k = heads(lin("attention.self.query", x))
        v = heads(lin("attention.self.value", x))
        if variant == "pairwise":
            scores = q @ P[p + "attention.self.pairwise_factors"] @ k.transpose(-1, -2)
        else:
            scores = q @ k.transpose(-1, -2)
        scores = scores / math.sqrt(d)
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, h)
        a = F.layer_norm(lin("attention.output.dense", ctx) + x, (h,),
                         P[p + "attention.output.LayerNorm.weight"], P[p + "attention.output.LayerNorm.bias"], eps)
        f = F.gelu(lin("intermediate.dense", a))
        x = F.layer_norm(lin("output.dense", f) + a, (h,),
                         P[p + "output.LayerNorm.weight"], P[p + "output.LayerNorm.bias"], eps)
    t = F.linear(x, P["cls.predictions.transform.dense.weight"], P["cls.predictions.transform.dense.bias"])
    t = F.layer_norm(F.gelu(t), (h,), P["cls.predictions.transform.LayerNorm.weight"],
                     P["cls.predictions.transform.LayerNorm.bias"], eps)
    logits = t @ wte.t() + P["cls.predictions.bias"]
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
    return loss, logits


def run(P0, cfg, variant, ids, labels, dtype):
    P = {k: v.to(dtype).clone().requires_grad_(True) for k, v in P0.items()}
    loss, logits = model_loss(P, cfg, variant, ids, labels)
    loss.backward()
    return loss, logits, {k: v.grad for k, v in P.items()}


def rel(a, b):
    a, b = a.double(), b.double()
    n = b.norm().item()
    return (a - b).norm().item() / n if n > 0 else (a - b).norm().item()


def hf_check(indir, cfg, ids, labels, loss, logits, grads):
    """Loads our checkpoint into transformers' BertForMaskedLM and compares."""
    import transformers
    hc = transformers.BertConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=cfg["max_position_embeddings"], type_vocab_size=cfg["type_vocab_size"],
        layer_norm_eps=cfg["layer_norm_eps"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        pad_token_id=cfg["pad_token_id"], hidden_act="gelu")
    try:
        hc._attn_implementation = "eager"
    except Exception:
        pass
    model, info = transformers.BertForMaskedLM.from_pretrained(indir, config=hc, output_loading_info=True,
                                                               torch_dtype=torch.float32)
    model.eval()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    try:
        named = dict(model.named_parameters(remove_duplicate=False))
    except TypeError:
        named = dict(model.named_parameters())
    worst, worst_name = 0.0, ""
    for k, g in grads.items():
        if k.endswith("attention.self.key.bias"):
            continue
        r = rel(named[k].grad, g)
        if r > worst:
            worst, worst_name = r, k
    m = labels.view(-1) != -100
    return {
        "transformers_version": transformers.__version__,
        "missing_keys": sorted(info.get("missing_keys", [])),
        "unexpected_keys": sorted(info.get("unexpected_keys", [])),
        "loss": out.loss.item(),
        "loss_rel_diff": abs(out.loss.item() - loss.item()) / abs(loss.item()),
        "logits_rel_diff": rel(out.logits.detach().view(-1, cfg["vocab_size"])[m], logits.detach().view(-1, cfg["vocab_size"])[m]),
        "grad_worst_rel_diff": worst,
        "grad_worst_name": worst_name,
    }


def main():
    indir, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(4)
    summary = {}
    for variant in VARIANTS:
        d = os.path.join(indir, variant)
        cfg = json.load(open(os.path.join(d, "config.json")))
        assert cfg["plpi_affinity_function"] == ("vanilla" if variant == "original" else variant)
        batch = json.load(open(os.path.join(d, "batch.json")))
        B, T = batch["B"], batch["T"]
        ids = torch.tensor(batch["input_ids"], dtype=torch.long).view(B, T)
        labels = torch.tensor(batch["labels"], dtype=torch.long).view(B, T)
        P0 = load_file(os.path.join(d, "model.safetensors"))
        loss, logits, grads = run(P0, cfg, variant, ids, labels, torch.float32)
        loss64, logits64, grads64 = run(P0, cfg, variant, ids, labels, torch.float64)
        m = labels.view(-1) != -100
        rows = logits.detach().view(-1, cfg["vocab_size"])[m]
        diag = {
            "fp64_loss": loss64.item(),
            "fp32_vs_fp64_logits_rel": rel(rows, logits64.detach().view(-1, cfg["vocab_size"])[m]),
            "fp32_vs_fp64_grad_worst_rel": max(rel(grads[k], grads64[k]) for k in grads
                                                if not k.endswith("attention.self.key.bias")),
        }
        if variant == "original":
            try:
                diag["huggingface"] = hf_check(d, cfg, ids, labels, loss, logits, grads)
            except Exception as e:  # report, do not hide
                diag["huggingface"] = {"error": repr(e)}
        out = {
            "variant": variant,
            "torch_version": torch.__version__,
            "loss": loss.item(),
            "n_masked": int(m.sum().item()),
            "logits": [[float(x) for x in r] for r in rows.tolist()],
            "diagnostics": diag,
        }
        with open(os.path.join(outdir, "torch_%s.json" % variant), "w") as f:
            json.dump(out, f)
        save_file({"grad." + k: g.contiguous() for k, g in grads.items()},
                  os.path.join(outdir, "torch_%s.safetensors" % variant))
        summary[variant] = {"loss": out["loss"], "n_masked": out["n_masked"], **diag}
        print(variant, json.dumps(summary[variant], indent=1), flush=True)
    with open(os.path.join(outdir, "torch_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
