/* model.cu - the MLM model on the GPU: buffers, forward, backward, AdamW.
 * The interface is gpu.h; the kernels live in one header per family.
 *
 * Shapes: M = B*T token rows, C hidden, F FFN, NH heads of d, n masked
 * positions of the micro-batch, V vocab (Vp: V rounded up to 8 so the
 * logits rows stay 16-byte aligned).  Activations are [rows, features]
 * row-major in the activation type T (bf16 or fp32).
 *
 * Parameters on the GPU are model.h's tensors in a slightly different order:
 * within each layer the query, key and value weights are adjacent, then
 * their biases (then the pairwise factors), so that the projections are
 * one product [M, C] x [C, nproj*C] (nproj = 3 original, 2 otherwise) and
 * their gradients one product too.  Only the host copies (set/get) convert;
 * everything else, checkpoints included, sees model.h's layout.
 *
 * Saved per layer for the backward pass: qkv [M, nproj*C] (packed), q S_h
 * (pairwise), the attention output o, the attention's log-sum-exp and
 * dropout bits (flash) or its probabilities (reference path),
 * r1 = x + dropout(attn) with its LayerNorm statistics, h1 = LN1(r1),
 * u = h1 W1^T (its bias b1 is added by the GELU kernels), g = gelu(u + b1), r2 and its statistics, h2 = LN2(r2) (the
 * next layer's input).  Other dropout masks are recomputed from model.h's
 * counter-based streams.  The last layer keeps only its attention dense:
 * from its output projection on it runs at the n masked rows, the only ones
 * the MLM head reads (sparse_last_fwd/bwd; SYMBERT_DENSE_LAST=1 turns that off).
 *
 * Backward, per layer, with `cur` the gradient of h2:
 *   LN2 back -> dres (gradient of r2 = of h1 through the residual) and dy
 *   (through the FFN-output dropout); FFN2 weight/bias/input products; GELU
 *   back; FFN1 products, the input gradient accumulated onto dres (beta 1);
 *   LN1 back -> cur (gradient of the layer input through the residual) and
 *   dy; output projection; attention back; the q/k/v products accumulate
 *   their input gradients onto cur.  Symmetric adds dk into dq; pairwise
 *   turns d(Q S_h) into dQ with S_h^T (accumulated onto dk) and dS_h.
 * All weight gradients accumulate in fp32 (beta 1 in cuBLASLt, atomics in
 * the reductions), so micro-batches simply add up. */
#include "trainer/cuda/gpu.h"
#include "trainer/cuda/common.cuh"
#include "trainer/cuda/matmul.cuh"
#include "trainer/cuda/layernorm.cuh"
#include "trainer/cuda/elementwise.cuh"
#include "trainer/cuda/attention.cuh"
#include "trainer/cuda/classifier.cuh"
#include "trainer/cuda/adamw.cuh"
#include "trainer/cuda/mask.cuh"
#include <math.h>
#include <string.h>

struct LayerBuf {
    void *qkv, *qs, *o, *r1, *h1, *u, *g, *r2, *h2, *probs;
    uint64_t *bits;
    float *lse, *mean1, *rstd1, *mean2, *rstd2;
};

#define NSLOTS 4

struct btc_model {
    const bt_layout *L;
    bt_config c;
    int maxB, T, prec, flash, C, F, NH, d, V, Vp, nsm, nproj;
    size_t np, esz;
    size_t *ioff;                   /* internal offset of each tensor of L */
    float *hbuf;                    /* host scratch for layout conversion (np floats) */
    float *p, *grad, *m1, *m2;
    void *pc;                       /* weights in T (bf16 copy, or p itself in fp32) */
    int32_t *d_in;                  /* per micro-batch: inputs [M], pos [M], lab [M] */
    int32_t *h_slot[NSLOTS];        /* pinned staging for those (or for raw ids and offsets) */
    uint16_t *d_ids;                /* raw ids of a micro-batch masked on the device [M] */
    int32_t *d_off;                 /* where each sample's labelled positions start [maxB + 1] */
    int *d_maskerr, *h_maskerr;     /* a sample whose device count differs from the host's (+1) */
    cudaEvent_t ev_slot[NSLOTS];
    int slot;
    void *x0, *r0;
    float *mean0, *rstd0;
    LayerBuf *lay;
    int cap;                        /* head rows allocated */
    void *hm, *hu, *hg, *hn, *logits, *dh1, *dh2;
    float *hmean, *hrstd, *lossrow;
    int sparse_last;                /* the last layer after its attention at the masked rows only */
    void *lo, *lr1, *lh1, *lu, *lg, *lr2, *ldres, *ldy, *ldu;   /* its rows there (head-sized) */
    int gathered;                   /* flash + sparse_last: its attention for the masked queries only */
    int tq;                         /* query rows per sample there (a multiple of 128, <= T) */
    void *gq, *go, *gdo, *gdq;      /* gathered queries, their outputs and gradients [maxB*T, C] at most */
    int32_t *qmap, *qrows, *qinv;   /* gathered row -> masked index (-1: padding), -> position; token row -> gathered row */
    int32_t *h_off;                 /* host copy of the per-sample offsets of the masked positions [maxB + 1] */
    float *lmean1, *lrstd1, *lmean2, *lrstd2;
    void *cur, *dres, *dy, *dqkv, *dqs, *dO, *du, *scr1, *scr2;
    float *dqacc, *dsum, *embtmp;
    float *pbias;                   /* pairwise: column sums of d(Q S_h) [C], zeroed by pair_bias_kernel */
    double *lossacc;
    double *h_loss;
    float *normclip, *h_norm;
    AdamChunk *chunks;
    int nchunks;
    float *partials;
    int last_n;
    cudaStream_t side;              /* dropout bits of the attention, ahead of the main stream; zeroing the gradients */
    cudaEvent_t ev_start, *ev_bits, ev_zero;
    int zero_pending;               /* btc_zero_grads asked; done on the side stream during the next forward */
};

static int g_inited;

/* Profiling (btc_profile): an event after each stage of one pass, summed by
 * stage name over the layers.  Off unless asked for: events cost nothing
 * then. */
#define PROF_MAX 4096
static int g_prof;
static int g_nev;
static cudaEvent_t g_ev[PROF_MAX];
static const char *g_evname[PROF_MAX];
static void prof(const char *name) {
    if (!g_prof || g_nev >= PROF_MAX) return;
    if (!g_ev[g_nev]) CUDA_CHECK(cudaEventCreate(&g_ev[g_nev]));
    CUDA_CHECK(cudaEventRecord(g_ev[g_nev], g_stream));
    g_evname[g_nev++] = name;
}
extern "C" void btc_profile_begin(void) { g_prof = 1; g_nev = 0; prof("start"); }
extern "C" int btc_profile_end(const char **names, double *ms, int cap) {
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    g_prof = 0;
    int n = 0;
    for (int i = 1; i < g_nev; i++) {
        float t;
        CUDA_CHECK(cudaEventElapsedTime(&t, g_ev[i - 1], g_ev[i]));
        int j = 0;
        while (j < n && strcmp(names[j], g_evname[i])) j++;
        if (j == n) { if (n == cap) continue; names[n] = g_evname[i]; ms[n] = 0; n++; }
        ms[j] += t;
    }
    return n;
}

extern "C" int btc_available(char *err, size_t errlen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(err, errlen, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        cudaGetLastError();
        return 0;
    }
    return 1;
}

extern "C" void btc_device_name(char *buf, size_t cap) {
    cudaDeviceProp pr;
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaGetDeviceProperties(&pr, dev));
    snprintf(buf, cap, "%s, %d SMs, %.1f GiB, compute %d.%d", pr.name, pr.multiProcessorCount,
             pr.totalGlobalMem / 1073741824.0, pr.major, pr.minor);
}

extern "C" size_t btc_memory_used(void) { return cu_allocated_bytes(); }
extern "C" size_t btc_memory_device(void) {
    size_t fr = 0, tot = 0;
    CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    return tot - fr;
}
extern "C" void btc_sync(void) { CUDA_CHECK(cudaStreamSynchronize(g_stream)); }

static void *alloc_t(btc_model *m, size_t n, const char *what) { return cu_alloc(n * m->esz, what); }

/* The internal order: model.h's, except that in each layer the group
 * Q_W K_W V_W Q_B K_B V_B PAIR (those present) starts where Q_W was, and
 * that the word embeddings and the decoder bias are followed by zeros up to
 * Vp vocab rows: the head's products then see a vocab of Vp (a multiple of
 * 8), which cuBLASLt runs 2.7x faster than 30,522 rows (measured,
 * btc_bench_head).  The padding stays zero: its logits are 0, their
 * gradients 0, and AdamW's chunks skip it.  Returns the floats needed. */
static size_t build_internal_layout(btc_model *m) {
    const bt_layout *L = m->L;
    static const bt_kind group[] = {BT_T_Q_W, BT_T_K_W, BT_T_V_W, BT_T_Q_B, BT_T_K_B, BT_T_V_B, BT_T_PAIR};
    m->ioff = (size_t *)malloc(L->n * sizeof(size_t));
    size_t off = 0;
    for (int i = 0; i < L->n; i++) {
        const bt_tensor *t = &L->t[i];
        int in_group = 0;
        for (size_t k = 0; k < sizeof group / sizeof group[0]; k++) in_group |= t->kind == group[k];
        if (!in_group) {
            m->ioff[i] = off;
            off += t->numel;
            if (t->kind == BT_T_WORD_EMB) off += (size_t)(m->Vp - m->V) * m->C;
            if (t->kind == BT_T_DEC_B) off += (size_t)(m->Vp - m->V);
            continue;
        }
        if (t->kind != BT_T_Q_W) continue;   /* placed with its group */
        for (size_t k = 0; k < sizeof group / sizeof group[0]; k++) {
            int j = L->index[group[k]][t->layer];
            if (j < 0) continue;
            m->ioff[j] = off;
            off += L->t[j].numel;
        }
    }
    return off;
}
static void to_internal(const btc_model *m, float *dst, const float *src) {
    for (int i = 0; i < m->L->n; i++) memcpy(dst + m->ioff[i], src + m->L->t[i].offset, m->L->t[i].numel * 4);
}
static void to_model(const btc_model *m, float *dst, const float *src) {
    for (int i = 0; i < m->L->n; i++) memcpy(dst + m->L->t[i].offset, src + m->ioff[i], m->L->t[i].numel * 4);
}

#define HEAD_ROUND 128   /* head rows are padded to a multiple of this: few distinct GEMM shapes */
static int head_pad(int n) { return (n + HEAD_ROUND - 1) / HEAD_ROUND * HEAD_ROUND; }

static void alloc_head(btc_model *m, int cap) {
    cap = head_pad(cap);
    cu_free(m->hm); cu_free(m->hu); cu_free(m->hg); cu_free(m->hn); cu_free(m->logits);
    cu_free(m->dh1); cu_free(m->dh2); cu_free(m->hmean); cu_free(m->hrstd); cu_free(m->lossrow);
    void *lb[] = {m->lo, m->lr1, m->lh1, m->lu, m->lg, m->lr2, m->ldres, m->ldy, m->ldu,
                  m->lmean1, m->lrstd1, m->lmean2, m->lrstd2};
    for (size_t i = 0; i < sizeof lb / sizeof lb[0]; i++) cu_free(lb[i]);
    m->cap = cap;
    m->hm = alloc_t(m, (size_t)cap * m->C, "MLM head input rows");
    m->hu = alloc_t(m, (size_t)cap * m->C, "MLM head pre-GELU");
    m->hg = alloc_t(m, (size_t)cap * m->C, "MLM head GELU output");
    m->hn = alloc_t(m, (size_t)cap * m->C, "MLM head LayerNorm output");
    m->dh1 = alloc_t(m, (size_t)cap * m->C, "MLM head gradient scratch");
    m->dh2 = alloc_t(m, (size_t)cap * m->C, "MLM head gradient scratch");
    m->logits = alloc_t(m, (size_t)cap * m->Vp, "MLM logits (masked positions x vocab)");
    m->hmean = (float *)cu_alloc((size_t)cap * 4, "MLM head LayerNorm statistics");
    m->hrstd = (float *)cu_alloc((size_t)cap * 4, "MLM head LayerNorm statistics");
    m->lossrow = (float *)cu_alloc((size_t)cap * 4, "per-position losses");
    if (m->sparse_last) {
        size_t rc = (size_t)cap * m->C, rf = (size_t)cap * m->F;
        m->lo = alloc_t(m, rc, "last layer: attention output at the masked rows");
        m->lr1 = alloc_t(m, rc, "last layer: residual 1 at the masked rows");
        m->lh1 = alloc_t(m, rc, "last layer: LayerNorm 1 output at the masked rows");
        m->lu = alloc_t(m, rf, "last layer: FFN pre-GELU at the masked rows");
        m->lg = alloc_t(m, rf, "last layer: FFN GELU output at the masked rows");
        m->lr2 = alloc_t(m, rc, "last layer: residual 2 at the masked rows");
        m->ldres = alloc_t(m, rc, "last layer: gradient scratch");
        m->ldy = alloc_t(m, rc, "last layer: gradient scratch");
        m->ldu = alloc_t(m, rf, "last layer: gradient scratch (FFN)");
        m->lmean1 = (float *)cu_alloc((size_t)cap * 4, "last layer: LayerNorm statistics");
        m->lrstd1 = (float *)cu_alloc((size_t)cap * 4, "last layer: LayerNorm statistics");
        m->lmean2 = (float *)cu_alloc((size_t)cap * 4, "last layer: LayerNorm statistics");
        m->lrstd2 = (float *)cu_alloc((size_t)cap * 4, "last layer: LayerNorm statistics");
    }
}

extern "C" btc_model *btc_new(const bt_layout *L, int maxB, int T, int prec, int attn_impl, char *err, size_t errlen) {
    const bt_config *c = &L->cfg;
    if (maxB < 1 || T < 1 || T > c->max_pos) {
        snprintf(err, errlen, "sequence length %d not in 1..%d (or empty batch)", T, c->max_pos);
        return NULL;
    }
    size_t esz = prec == BTC_FP32 ? 4 : 2;
    if ((c->hidden * esz) % 16 || (c->ffn * esz) % 16 || ((c->hidden / c->heads) * esz) % 16) {
        snprintf(err, errlen, "hidden (%d), FFN (%d) and head sizes must be multiples of %zu for the CUDA trainer",
                 c->hidden, c->ffn, 16 / esz);
        return NULL;
    }
    if (!g_inited) { gemm_init(); g_inited = 1; }
    btc_model *m = (btc_model *)calloc(1, sizeof *m);
    m->L = L; m->c = *c; m->maxB = maxB; m->T = T; m->prec = prec; m->esz = esz;
    m->C = c->hidden; m->F = c->ffn; m->NH = c->heads; m->d = c->hidden / c->heads;
    m->V = c->vocab_size; m->Vp = (c->vocab_size + 7) / 8 * 8;
    m->nproj = c->attn == BT_ATTN_ORIGINAL ? 3 : 2;
    {   /* SYMBERT_DENSE_LAST=1: the last layer over every row, as the others (for comparisons) */
        const char *e = getenv("SYMBERT_DENSE_LAST");
        m->sparse_last = !(e && *e && strcmp(e, "0"));
    }
    m->np = build_internal_layout(m);
    m->hbuf = (float *)calloc(m->np, sizeof(float));   /* the padding stays zero */
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&m->nsm, cudaDevAttrMultiProcessorCount, dev));
    int ldp = m->nproj * c->hidden;
    AttnShape as = {maxB, T, m->NH, m->d, ldp, ldp, ldp, c->hidden};
    m->flash = prec == BTC_BF16 && attn_impl != BTC_ATTN_REF && flash_supported(as);
    if (attn_impl == BTC_ATTN_FLASH && !m->flash) {
        snprintf(err, errlen, "the flash attention kernels need bf16, head size 64 and a sequence length multiple of 128");
        free(m);
        return NULL;
    }
    size_t M = (size_t)maxB * T, C = m->C, F = m->F;
    m->p = (float *)cu_alloc(m->np * 4, "fp32 master weights");
    m->grad = (float *)cu_alloc(m->np * 4, "fp32 gradients");
    m->m1 = (float *)cu_alloc(m->np * 4, "AdamW first moments");
    m->m2 = (float *)cu_alloc(m->np * 4, "AdamW second moments");
    CUDA_CHECK(cudaMemset(m->p, 0, m->np * 4));
    CUDA_CHECK(cudaMemset(m->grad, 0, m->np * 4));
    CUDA_CHECK(cudaMemset(m->m1, 0, m->np * 4));
    CUDA_CHECK(cudaMemset(m->m2, 0, m->np * 4));
    m->pc = prec == BTC_FP32 ? (void *)m->p : cu_alloc(m->np * 2, "bf16 copy of the weights");
    m->d_in = (int32_t *)cu_alloc(3 * M * 4, "input ids, masked positions and labels");
    m->d_ids = (uint16_t *)cu_alloc(M * 2, "raw input ids");
    m->d_off = (int32_t *)cu_alloc(((size_t)maxB + 1) * 4, "masked positions per sample");
    m->d_maskerr = (int *)cu_alloc(4, "masking check");
    CUDA_CHECK(cudaMemset(m->d_maskerr, 0, 4));
    CUDA_CHECK(cudaMallocHost((void **)&m->h_maskerr, 4));
    for (int s = 0; s < NSLOTS; s++) {
        CUDA_CHECK(cudaMallocHost((void **)&m->h_slot[s], 3 * M * 4));
        CUDA_CHECK(cudaEventCreateWithFlags(&m->ev_slot[s], cudaEventDisableTiming));
    }
    m->x0 = alloc_t(m, M * C, "embedding output");
    m->r0 = alloc_t(m, M * C, "embedding sum");
    m->mean0 = (float *)cu_alloc(M * 4, "embedding LayerNorm statistics");
    m->rstd0 = (float *)cu_alloc(M * 4, "embedding LayerNorm statistics");
    m->lay = (LayerBuf *)calloc(c->layers, sizeof(LayerBuf));
    for (int l = 0; l < c->layers; l++) {
        LayerBuf *b = &m->lay[l];
        b->qkv = alloc_t(m, M * C * m->nproj, "activations: query/key/value");
        if (c->attn == BT_ATTN_PAIRWISE) b->qs = alloc_t(m, M * C, "activations: Q S_h");
        b->o = alloc_t(m, M * C, "activations: attention output");
        if (m->flash) {
            b->lse = (float *)cu_alloc((size_t)maxB * m->NH * T * 4, "attention log-sum-exp");
            b->bits = (uint64_t *)cu_alloc((size_t)maxB * m->NH * T * T / 8, "attention dropout bits");
        } else {
            b->probs = alloc_t(m, (size_t)maxB * m->NH * T * T, "attention probabilities [B, heads, T, T]");
        }
        if (m->sparse_last && l == c->layers - 1) continue;   /* those rows live in the head-sized buffers */
        b->r1 = alloc_t(m, M * C, "activations: residual 1");
        b->h1 = alloc_t(m, M * C, "activations: LayerNorm 1 output");
        b->u = alloc_t(m, M * F, "activations: FFN pre-GELU");
        b->g = alloc_t(m, M * F, "activations: FFN GELU output");
        b->r2 = alloc_t(m, M * C, "activations: residual 2");
        b->h2 = alloc_t(m, M * C, "activations: layer output");
        b->mean1 = (float *)cu_alloc(M * 4, "LayerNorm statistics");
        b->rstd1 = (float *)cu_alloc(M * 4, "LayerNorm statistics");
        b->mean2 = (float *)cu_alloc(M * 4, "LayerNorm statistics");
        b->rstd2 = (float *)cu_alloc(M * 4, "LayerNorm statistics");
    }
    int cap = (int)(M / 4) + 256;
    if ((size_t)cap > M) cap = (int)M;
    alloc_head(m, cap);
    m->cur = alloc_t(m, M * C, "gradient scratch");
    m->dres = alloc_t(m, M * C, "gradient scratch");
    m->dy = alloc_t(m, M * C, "gradient scratch");
    m->dqkv = alloc_t(m, M * C * m->nproj, "gradient scratch (query/key/value)");
    if (c->attn == BT_ATTN_PAIRWISE) m->dqs = alloc_t(m, M * C, "gradient scratch (Q S_h)");
    m->dO = alloc_t(m, M * C, "gradient scratch (attention output)");
    m->du = alloc_t(m, M * F, "gradient scratch (FFN)");
    if (m->flash) {
        m->dqacc = (float *)cu_alloc(M * C * 4, "attention dQ accumulator (fp32)");
        m->dsum = (float *)cu_alloc((size_t)maxB * m->NH * T * 4, "attention backward row sums");
    } else {
        m->scr1 = alloc_t(m, (size_t)maxB * m->NH * T * T, "attention scores scratch [B, heads, T, T]");
        m->scr2 = alloc_t(m, (size_t)maxB * m->NH * T * T, "attention scores scratch [B, heads, T, T]");
    }
    m->embtmp = (float *)cu_alloc((size_t)T * C * 4, "embedding gradient scratch");
    m->pbias = (float *)cu_alloc(C * 4, "pairwise bias-gradient scratch");
    m->gathered = m->flash && m->sparse_last;
    m->h_off = (int32_t *)calloc((size_t)maxB + 1, sizeof(int32_t));
    if (m->gathered) {
        m->gq = alloc_t(m, M * C, "last layer: gathered queries");
        m->go = alloc_t(m, M * C, "last layer: attention output of the gathered queries");
        m->gdo = alloc_t(m, M * C, "last layer: gradient of that output");
        m->gdq = alloc_t(m, M * C, "last layer: gradient of the gathered queries");
        m->qmap = (int32_t *)cu_alloc(M * 4, "last layer: query maps");
        m->qrows = (int32_t *)cu_alloc(M * 4, "last layer: query maps");
        m->qinv = (int32_t *)cu_alloc(M * 4, "last layer: query maps");
    }
    CUDA_CHECK(cudaMemset(m->pbias, 0, C * 4));
    m->lossacc = (double *)cu_alloc(sizeof(double), "loss accumulator");
    CUDA_CHECK(cudaMemset(m->lossacc, 0, sizeof(double)));
    CUDA_CHECK(cudaMallocHost((void **)&m->h_loss, sizeof(double)));
    m->normclip = (float *)cu_alloc(2 * sizeof(float), "gradient norm");
    CUDA_CHECK(cudaMallocHost((void **)&m->h_norm, 2 * sizeof(float)));
    /* AdamW chunks: never across two tensors */
    int nch = 0;
    for (int i = 0; i < L->n; i++) nch += (int)((L->t[i].numel + ADAM_CHUNK - 1) / ADAM_CHUNK);
    AdamChunk *hc = (AdamChunk *)malloc(nch * sizeof *hc);
    nch = 0;
    for (int i = 0; i < L->n; i++)
        for (size_t o = 0; o < L->t[i].numel; o += ADAM_CHUNK) {
            size_t len = L->t[i].numel - o;
            hc[nch].off = m->ioff[i] + o;
            hc[nch].len = (int)(len < ADAM_CHUNK ? len : ADAM_CHUNK);
            hc[nch].decay = L->t[i].decay;
            nch++;
        }
    m->nchunks = nch;
    m->chunks = (AdamChunk *)cu_alloc(nch * sizeof *hc, "AdamW chunk table");
    CUDA_CHECK(cudaMemcpy(m->chunks, hc, nch * sizeof *hc, cudaMemcpyHostToDevice));
    free(hc);
    m->partials = (float *)cu_alloc(nch * 4, "gradient norm partials");
    int prio_lo, prio_hi;   /* the side stream at the lowest priority (g_stream has the highest) */
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&prio_lo, &prio_hi));
    CUDA_CHECK(cudaStreamCreateWithPriority(&m->side, cudaStreamNonBlocking, prio_lo));
    CUDA_CHECK(cudaEventCreateWithFlags(&m->ev_start, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&m->ev_zero, cudaEventDisableTiming));
    m->ev_bits = (cudaEvent_t *)calloc(c->layers, sizeof(cudaEvent_t));
    for (int l = 0; l < c->layers; l++) CUDA_CHECK(cudaEventCreateWithFlags(&m->ev_bits[l], cudaEventDisableTiming));
    return m;
}

extern "C" void btc_free(btc_model *m) {
    if (!m) return;
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    for (int s = 0; s < NSLOTS; s++) { cudaFreeHost(m->h_slot[s]); cudaEventDestroy(m->ev_slot[s]); }
    cudaFreeHost(m->h_loss); cudaFreeHost(m->h_norm); cudaFreeHost(m->h_maskerr);
    /* device memory: freed wholesale; the process usually ends here */
    void *bufs[] = {m->p, m->grad, m->m1, m->m2, m->d_in, m->d_ids, m->d_off, m->d_maskerr, m->x0, m->r0, m->mean0, m->rstd0, m->hm, m->hu, m->hg,
                    m->hn, m->logits, m->dh1, m->dh2, m->hmean, m->hrstd, m->lossrow, m->cur, m->dres, m->dy, m->dqkv,
                    m->dqs, m->dO, m->du, m->scr1, m->scr2, m->dqacc, m->dsum, m->embtmp, m->pbias, m->gq, m->go, m->gdo,
                    m->gdq, m->qmap, m->qrows, m->qinv, m->lossacc,
                    m->normclip, m->chunks, m->partials, m->lo, m->lr1, m->lh1, m->lu, m->lg, m->lr2, m->ldres,
                    m->ldy, m->ldu, m->lmean1, m->lrstd1, m->lmean2, m->lrstd2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cu_free(bufs[i]);
    if (m->pc != m->p) cu_free(m->pc);
    for (int l = 0; l < m->c.layers; l++) {
        LayerBuf *b = &m->lay[l];
        void *lb[] = {b->qkv, b->qs, b->o, b->r1, b->h1, b->u, b->g, b->r2, b->h2, b->probs, b->bits, b->lse,
                      b->mean1, b->rstd1, b->mean2, b->rstd2};
        for (size_t i = 0; i < sizeof lb / sizeof lb[0]; i++) cu_free(lb[i]);
    }
    for (int l = 0; l < m->c.layers; l++) cudaEventDestroy(m->ev_bits[l]);
    free(m->ev_bits);
    cudaEventDestroy(m->ev_start);
    cudaEventDestroy(m->ev_zero);
    cudaStreamDestroy(m->side);
    free(m->lay);
    free(m->ioff);
    free(m->hbuf);
    free(m->h_off);
    free(m);
}

extern "C" const char *btc_attn_name(const btc_model *m) { return m->flash ? "flash" : "reference"; }

static void refresh_copy(btc_model *m) {
    if (m->prec == BTC_BF16) convert_from_f32<bf16>((bf16 *)m->pc, m->p, m->np);
}
static void upload(btc_model *m, float *dst, const float *src) {
    to_internal(m, m->hbuf, src);
    CUDA_CHECK(cudaMemcpy(dst, m->hbuf, m->np * 4, cudaMemcpyHostToDevice));
}
static void download(btc_model *m, float *dst, const float *src) {
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    CUDA_CHECK(cudaMemcpy(m->hbuf, src, m->np * 4, cudaMemcpyDeviceToHost));
    to_model(m, dst, m->hbuf);
}
extern "C" void btc_set_params(btc_model *m, const float *params) {
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    upload(m, m->p, params);
    refresh_copy(m);
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
}
extern "C" void btc_get_params(btc_model *m, float *params) { download(m, params, m->p); }
/* A zeroing still pending (no backward pass since btc_zero_grads) is done now, on the main stream. */
static void zero_now(btc_model *m) {
    if (!m->zero_pending) return;
    CUDA_CHECK(cudaMemsetAsync(m->grad, 0, m->np * 4, g_stream));
    m->zero_pending = 0;
}
extern "C" void btc_get_grads(btc_model *m, float *grads) { zero_now(m); download(m, grads, m->grad); }
extern "C" void btc_set_moments(btc_model *m, const float *a, const float *b) {
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    if (a) upload(m, m->m1, a);
    else CUDA_CHECK(cudaMemset(m->m1, 0, m->np * 4));
    if (b) upload(m, m->m2, b);
    else CUDA_CHECK(cudaMemset(m->m2, 0, m->np * 4));
}
extern "C" void btc_get_moments(btc_model *m, float *a, float *b) {
    if (a) download(m, a, m->m1);
    if (b) download(m, b, m->m2);
}
/* The gradients are zeroed on the side stream while the next pass's forward
 * runs (it reads no gradient), and its backward waits for that: the 4 bytes
 * a parameter of memset overlap compute-bound products instead of adding up. */
extern "C" void btc_zero_grads(btc_model *m) { m->zero_pending = 1; }

/* ------------------------------------------------------------ the pass */

/* Pairwise: gq[h d + j] += sum_k S_h[j][k] t[h d + k] (t: the column sums of
 * d(Q S_h), S_h row-major [d, d] in fp32), then t = 0.  Block h, thread j. */
__global__ static void pair_bias_kernel(float *gq, float *t, const float *S, int d) {
    int h = blockIdx.x, j = threadIdx.x;
    const float *Sj = S + ((size_t)h * d + j) * d, *th = t + (size_t)h * d;
    float a = 0.0f;
    for (int k = 0; k < d; k++) a += Sj[k] * th[k];
    gq[h * d + j] += a;
    __syncthreads();
    t[h * d + j] = 0.0f;
}

__global__ static void loss_accum_kernel(double *acc, const float *x, int n) {
    double t = block_sum_fixed(x, n);
    if (threadIdx.x == 0) {
        acc[0] += t;
    }
}

static inline size_t ioff(btc_model *m, bt_kind k, int l) {
    int i = m->L->index[k][k <= BT_T_EMB_LN_B || k >= BT_T_HEAD_W ? 0 : l];
    return i < 0 ? (size_t)-1 : m->ioff[i];
}
template <typename T> static inline T *W(btc_model *m, bt_kind k, int l) {
    size_t o = ioff(m, k, l);
    return o == (size_t)-1 ? NULL : (T *)m->pc + o;
}
static inline float *PF(btc_model *m, bt_kind k, int l) { return m->p + ioff(m, k, l); }
static inline float *GR(btc_model *m, bt_kind k, int l) { return m->grad + ioff(m, k, l); }

/* The gathered queries of the last layer: sample b's masked positions
 * (off[b] .. off[b + 1] - 1 in the list pos) become query rows b*tq + j,
 * padded to tq.  qmap: row -> index in the list (-1: padding); qrows: row ->
 * position in its sample (its dropout draws; -1); qinv: token row -> row
 * (-1: not masked; set to -1 by the caller first).  Block b. */
__global__ static void gq_maps_kernel(int32_t *qmap, int32_t *qrows, int32_t *qinv, const int32_t *pos,
                                      const int32_t *off, int T, int tq) {
    int b = blockIdx.x, cnt = off[b + 1] - off[b];
    for (int j = threadIdx.x; j < tq; j += blockDim.x) {
        int r = b * tq + j, k = j < cnt ? off[b] + j : -1;
        qmap[r] = k;
        qrows[r] = k >= 0 ? pos[k] - b * T : -1;
        if (k >= 0) qinv[pos[k]] = r;
    }
}
/* dst[r] = src[sidx(r)] for rows r < nrows (16-byte packs), zero where the
 * index is -1; sidx(r) = via ? via[map[r]] : map[r] (map[r] >= 0).  add:
 * dst[r] += src[sidx(r)] instead, rows with index -1 untouched. */
template <typename T>
__global__ static void gather_map_kernel(T *dst, int ldd, const T *src, int lds, const int32_t *map, const int32_t *via,
                                         int nrows, int C, int add) {
    constexpr int V = Pack16<T>::N;
    int r = blockIdx.x * (blockDim.x / (C / V)) + threadIdx.x / (C / V), c = (threadIdx.x % (C / V)) * V;
    if (r >= nrows) return;
    int k = map[r];
    Pack16<T> x;
    if (k >= 0) x = ld16(src + (size_t)(via ? via[k] : k) * lds + c);
    else if (add) return;
    else
#pragma unroll
        for (int i = 0; i < V; i++) x.v[i] = from_f<T>(0.0f);
    if (add && k >= 0) {
        Pack16<T> y = ld16(dst + (size_t)r * ldd + c);
#pragma unroll
        for (int i = 0; i < V; i++) x.v[i] = from_f<T>(to_f(x.v[i]) + to_f(y.v[i]));
    }
    st16(dst + (size_t)r * ldd + c, x);
}
/* dst[map[r]] (op)= src[r] for rows r < nrows with map[r] >= 0: add 0 writes, 1 adds. */
template <typename T>
__global__ static void scatter_map_kernel(T *dst, int ldd, const T *src, int lds, const int32_t *map, int nrows, int C,
                                          int add) {
    constexpr int V = Pack16<T>::N;
    int r = blockIdx.x * (blockDim.x / (C / V)) + threadIdx.x / (C / V), c = (threadIdx.x % (C / V)) * V;
    if (r >= nrows) return;
    int k = map[r];
    if (k < 0) return;
    Pack16<T> x = ld16(src + (size_t)r * lds + c);
    if (add) {
        Pack16<T> y = ld16(dst + (size_t)k * ldd + c);
#pragma unroll
        for (int i = 0; i < V; i++) x.v[i] = from_f<T>(to_f(x.v[i]) + to_f(y.v[i]));
    }
    st16(dst + (size_t)k * ldd + c, x);
}
template <typename T> static void launch_rows(int nrows, int C, dim3 &grid, int &threads) {
    int per = C / Pack16<T>::N, rows = 256 / per > 0 ? 256 / per : 1;
    threads = rows * per;
    grid = dim3(ceil_div(nrows, rows));
}
template <typename T>
static void gather_map(T *dst, int ldd, const T *src, int lds, const int32_t *map, const int32_t *via, int nrows, int C,
                       int add = 0) {
    dim3 g; int th;
    launch_rows<T>(nrows, C, g, th);
    gather_map_kernel<T><<<g, th, 0, g_stream>>>(dst, ldd, src, lds, map, via, nrows, C, add);
    LAUNCH_CHECK("gather_map_kernel");
}
template <typename T>
static void scatter_map(T *dst, int ldd, const T *src, int lds, const int32_t *map, int nrows, int C, int add) {
    dim3 g; int th;
    launch_rows<T>(nrows, C, g, th);
    scatter_map_kernel<T><<<g, th, 0, g_stream>>>(dst, ldd, src, lds, map, nrows, C, add);
    LAUNCH_CHECK("scatter_map_kernel");
}

/* A layer after its attention, on `rows` rows (padded with zero rows to
 * prow for the products): output projection, LN1 (with the projection's
 * bias, dropout and the residual), FFN, LN2; and its backward.  The dense
 * layers run it on every token row; the last layer on its masked rows
 * (rowmap: their token rows, for the dropout draws).  PostAttn names the
 * buffers of one such call. */
struct PostAttn {
    const void *o, *x;                  /* attention output, layer input (the residual) */
    void *r1, *h1, *u, *g, *r2, *h2;    /* saved for the backward; h2 the output */
    float *mean1, *rstd1, *mean2, *rstd2;
    void *y, *dres, *du;                /* scratch: sublayer outputs / their gradients */
    void *dh, *dx, *dO;                 /* backward: gradient of h2 (in), of x and of o (out; dx may be dh) */
};
template <typename T>
static void pad_zero(void *p, int rows, int prow, int C, size_t esz) {
    if (prow > rows) CUDA_CHECK(cudaMemsetAsync((T *)p + (size_t)rows * C, 0, (size_t)(prow - rows) * C * esz, g_stream));
}
template <typename T>
static void post_attn_fwd(btc_model *m, const PostAttn &p, int rows, int prow, const int32_t *rowmap, DropCtx hd, int l) {
    const int C = m->C, F = m->F, T_ = m->T;
    const float eps = m->c.ln_eps;
    linear_fwd<T>((T *)p.y, (const T *)p.o, W<T>(m, BT_T_AO_W, l), NULL, prow, C, C);   /* (bias: in LN1) */
    prof("fwd attn-out GEMM");
    LnDrop d1 = {hd, l, BT_DROP_ATTN_OUT, rowmap};
    layernorm_forward<T>((T *)p.h1, (T *)p.r1, p.mean1, p.rstd1, (const T *)p.x, (const T *)p.y, PF(m, BT_T_AO_B, l),
                         PF(m, BT_T_ALN_W, l), PF(m, BT_T_ALN_B, l), rows, C, T_, eps, d1);
    pad_zero<T>(p.h1, rows, prow, C, m->esz);
    prof("fwd LN1");
    linear_fwd<T>((T *)p.u, (const T *)p.h1, W<T>(m, BT_T_FFN1_W, l), NULL, prow, F, C);   /* (bias: in GELU) */
    prof("fwd FFN1 GEMM");
    gelu_forward<T>((T *)p.g, (const T *)p.u, PF(m, BT_T_FFN1_B, l), prow, F);
    prof("fwd GELU");
    linear_fwd<T>((T *)p.y, (const T *)p.g, W<T>(m, BT_T_FFN2_W, l), NULL, prow, C, F);   /* (bias: in LN2) */
    prof("fwd FFN2 GEMM");
    LnDrop d2 = {hd, l, BT_DROP_FFN_OUT, rowmap};
    layernorm_forward<T>((T *)p.h2, (T *)p.r2, p.mean2, p.rstd2, (const T *)p.h1, (const T *)p.y, PF(m, BT_T_FFN2_B, l),
                         PF(m, BT_T_OLN_W, l), PF(m, BT_T_OLN_B, l), rows, C, T_, eps, d2);
    prof("fwd LN2");
}
/* Padding rows of every gradient stay zero, so they add nothing to the weight gradients. */
template <typename T>
static void post_attn_bwd(btc_model *m, const PostAttn &p, int rows, int prow, const int32_t *rowmap, DropCtx hd, int l) {
    const int C = m->C, F = m->F, T_ = m->T;
    LnDrop d2 = {hd, l, BT_DROP_FFN_OUT, rowmap};
    layernorm_backward<T>((T *)p.dres, (T *)p.y, GR(m, BT_T_OLN_W, l), GR(m, BT_T_OLN_B, l), GR(m, BT_T_FFN2_B, l),
                          (const T *)p.dh, (const T *)p.r2, p.mean2, p.rstd2, PF(m, BT_T_OLN_W, l), rows, C, T_, d2, 0,
                          m->nsm);
    pad_zero<T>(p.dres, rows, prow, C, m->esz);
    pad_zero<T>(p.y, rows, prow, C, m->esz);
    prof("bwd LN2(+bias)");
    linear_bwd_w<T>(GR(m, BT_T_FFN2_W, l), (const T *)p.y, (const T *)p.g, prow, C, F);
    prof("bwd FFN2 dW");
    linear_bwd_x<T>((T *)p.du, (const T *)p.y, W<T>(m, BT_T_FFN2_W, l), prow, C, F, 0.0f);
    prof("bwd FFN2 dX");
    gelu_backward_bias<T>((T *)p.du, (const T *)p.u, PF(m, BT_T_FFN1_B, l), GR(m, BT_T_FFN1_B, l), prow, F, m->nsm);
    prof("bwd GELU(+bias)");
    linear_bwd_w<T>(GR(m, BT_T_FFN1_W, l), (const T *)p.du, (const T *)p.h1, prow, F, C);
    prof("bwd FFN1 dW");
    linear_bwd_x<T>((T *)p.dres, (const T *)p.du, W<T>(m, BT_T_FFN1_W, l), prow, F, C, 1.0f);
    prof("bwd FFN1 dX");
    LnDrop d1 = {hd, l, BT_DROP_ATTN_OUT, rowmap};
    layernorm_backward<T>((T *)p.dx, (T *)p.y, GR(m, BT_T_ALN_W, l), GR(m, BT_T_ALN_B, l), GR(m, BT_T_AO_B, l),
                          (const T *)p.dres, (const T *)p.r1, p.mean1, p.rstd1, PF(m, BT_T_ALN_W, l), rows, C, T_, d1, 0,
                          m->nsm);
    prof("bwd LN1(+bias)");
    linear_bwd_w<T>(GR(m, BT_T_AO_W, l), (const T *)p.y, (const T *)p.o, prow, C, C);
    prof("bwd attn-out dW");
    linear_bwd_x<T>((T *)p.dO, (const T *)p.y, W<T>(m, BT_T_AO_W, l), prow, C, C, 0.0f);
    prof("bwd attn-out dX");
}
/* The buffers of a dense layer l and of the last layer at its masked rows (head-sized, the head's
 * input rows hm as its output; dh1 the incoming gradient, then dO's; dh2 the gathered x, then dx's). */
static PostAttn post_dense(btc_model *m, LayerBuf *b, const void *x) {
    PostAttn p = {b->o, x, b->r1, b->h1, b->u, b->g, b->r2, b->h2, b->mean1, b->rstd1, b->mean2, b->rstd2,
                  m->dy, m->dres, m->du, m->cur, m->cur, m->dO};
    return p;
}
static PostAttn post_masked(btc_model *m) {
    PostAttn p = {m->lo, m->dh2, m->lr1, m->lh1, m->lu, m->lg, m->lr2, m->hm, m->lmean1, m->lrstd1, m->lmean2, m->lrstd2,
                  m->ldy, m->ldres, m->ldu, m->dh1, m->dh2, m->dh1};
    return p;
}

/* The last layer at the masked rows only.  Its output feeds nothing but the
 * MLM head, which reads the n masked rows, and everything after its
 * attention works row by row: so post_attn runs on those n rows (gathered,
 * padded with zero rows to np_ as the head is), and their gradients reach
 * the attention output and the layer input at those rows only.  Same loss
 * and gradients as the dense layer.  Its attention stays dense but for the
 * queries (every row is a key and a value; with the flash kernels only the
 * masked queries are computed, m->gathered).  Forward: from the attention
 * output and the layer input x to the head's input rows m->hm. */
template <typename T>
static void sparse_last_fwd(btc_model *m, LayerBuf *b, const T *x, const int32_t *pos, int B, int n, int np_,
                            DropCtx hd, int l) {
    const int C = m->C;
    gemm_set_autotune(0);   /* shapes follow the masked count, as the head's */
    if (m->gathered)   /* the attention ran for these queries only: rows b*tq + j -> masked index */
        scatter_map<T>((T *)m->lo, C, (const T *)m->go, C, m->qmap, B * m->tq, C, 0);
    else
        gather_rows<T>((T *)m->lo, (const T *)b->o, pos, n, C);
    pad_zero<T>(m->lo, n, np_, C, m->esz);
    gather_rows<T>((T *)m->dh2, x, pos, n, C);   /* the residual's rows (scratch until the backward) */
    post_attn_fwd<T>(m, post_masked(m), n, np_, pos, hd, l);
    gemm_set_autotune(1);
}
/* Backward, from the gradient of the head's input rows (m->dh1, zero padding
 * rows) to the gradients of the attention output (m->dO, or m->gdo for the
 * gathered queries) and of the layer input (m->cur, the residual's share;
 * the q/k/v products add theirs), zero outside the masked rows. */
template <typename T>
static void sparse_last_bwd(btc_model *m, int M, const int32_t *pos, int n, int np_, DropCtx hd, int l) {
    const int C = m->C;
    gemm_set_autotune(0);
    post_attn_bwd<T>(m, post_masked(m), n, np_, pos, hd, l);
    gemm_set_autotune(1);
    if (m->gathered)   /* the gradient of the gathered queries' outputs (padding rows zero) */
        gather_map<T>((T *)m->gdo, C, (const T *)m->dh1, C, m->qmap, NULL, M / m->T * m->tq, C);
    else {
        CUDA_CHECK(cudaMemsetAsync(m->dO, 0, (size_t)M * C * m->esz, g_stream));
        scatter_rows<T>((T *)m->dO, (const T *)m->dh1, pos, n, C);
    }
    CUDA_CHECK(cudaMemsetAsync(m->cur, 0, (size_t)M * C * m->esz, g_stream));
    scatter_rows<T>((T *)m->cur, (const T *)m->dh2, pos, n, C);
}

template <typename T>
static void run_pass(btc_model *m, int B, int n, int backward, DropCtx dc, float scale) {
    const bt_config *c = &m->c;
    const int T_ = m->T, C = m->C, NH = m->NH, d = m->d, M = B * T_;
    const int32_t *inputs = m->d_in, *pos = m->d_in + M, *lab = m->d_in + 2 * M;
    const float eps = c->ln_eps;
    const DropCtx hd = drop_ctx(dc.seed, dc.step, dc.sample0, dc.on ? c->hidden_dropout : 0.0f);
    const DropCtx ad = drop_ctx(dc.seed, dc.step, dc.sample0, dc.on ? c->attn_dropout : 0.0f);
    const int orig = c->attn == BT_ATTN_ORIGINAL, pair = c->attn == BT_ATTN_PAIRWISE;
    const int np = m->nproj, ldp = np * C;
    /* q, k, v as column slices of the packed projection output; pairwise feeds Q S_h as q */
    AttnShape as = {B, T_, NH, d, pair ? C : ldp, ldp, ldp, C};
    cudaDataType_t ty = CuType<T>::id;

    /* the attention dropout bits of every layer, on the side stream: they depend on no data, and
     * this integer work overlaps the memory-bound kernels of the main stream.  They start once
     * everything queued before (the previous pass's backward, which reads the old bits) is done. */
    /* the last layer's attention for the masked queries only: gathered rows b*tq + j */
    const int gath = m->gathered && n > 0;
    AttnShape asq = as;
    if (gath) {
        asq.ldq = C; asq.ldo = C; asq.Tq = m->tq; asq.qrows = m->qrows;
        CUDA_CHECK(cudaMemsetAsync(m->qinv, 0xff, (size_t)M * 4, g_stream));
        gq_maps_kernel<<<B, 128, 0, g_stream>>>(m->qmap, m->qrows, m->qinv, pos, m->d_off, T_, m->tq);
        LAUNCH_CHECK("gq_maps_kernel");
    }
    const int side_bits = m->flash && ad.on;
    if (side_bits) {
        CUDA_CHECK(cudaEventRecord(m->ev_start, g_stream));
        CUDA_CHECK(cudaStreamWaitEvent(m->side, m->ev_start, 0));
        for (int l = 0; l < c->layers; l++) {
            flash_dropout_bits(m->lay[l].bits, gath && l == c->layers - 1 ? asq : as, ad, l, m->side);
            CUDA_CHECK(cudaEventRecord(m->ev_bits[l], m->side));
        }
    }
    const int zero_side = m->zero_pending && backward && n > 0;
    if (zero_side) {   /* after everything queued before (the last update's AdamW reads the gradients) */
        if (!side_bits) {
            CUDA_CHECK(cudaEventRecord(m->ev_start, g_stream));
            CUDA_CHECK(cudaStreamWaitEvent(m->side, m->ev_start, 0));
        }
        CUDA_CHECK(cudaMemsetAsync(m->grad, 0, m->np * 4, m->side));
        CUDA_CHECK(cudaEventRecord(m->ev_zero, m->side));
        m->zero_pending = 0;
    }

    /* embeddings */
    LnDrop emb_drop = {hd, -1, BT_DROP_EMB};
    embed_forward<T>((T *)m->x0, (T *)m->r0, m->mean0, m->rstd0, inputs, W<T>(m, BT_T_WORD_EMB, 0),
                     W<T>(m, BT_T_POS_EMB, 0), W<T>(m, BT_T_TYPE_EMB, 0), PF(m, BT_T_EMB_LN_W, 0),
                     PF(m, BT_T_EMB_LN_B, 0), M, C, T_, eps, emb_drop);
    prof("fwd embeddings+LN");
    const int last = c->layers - 1, sparse = m->sparse_last;
    const int np_ = head_pad(n), npad = np_ - n;
    for (int l = 0; l < c->layers; l++) {
        LayerBuf *b = &m->lay[l];
        const T *x = l == 0 ? (const T *)m->x0 : (const T *)m->lay[l - 1].h2;
        if (sparse && l == last && n == 0) break;   /* nothing masked: the last layer feeds nothing */
        T *qkv = (T *)b->qkv;
        linear_fwd<T>(qkv, x, W<T>(m, BT_T_Q_W, l), W<T>(m, BT_T_Q_B, l), M, ldp, C);
        prof("fwd QKV GEMM");
        if (pair)   /* qs_h = q_h S_h, all heads in one batched product */
            gemm(b->qs, ty, C, W<T>(m, BT_T_PAIR, l), d, 0, qkv, ldp, 0, ty, d, M, d, 1.0f, 0.0f, NULL, NH,
                 (long long)d * d, d, d);
        prof("fwd pairwise Q.S");
        const T *qa = pair ? (const T *)b->qs : qkv;
        const T *ka = qkv + (orig ? C : 0), *va = qkv + (np - 1) * C;
        if (m->flash) {
            if (side_bits) CUDA_CHECK(cudaStreamWaitEvent(g_stream, m->ev_bits[l], 0));
            if (gath && l == last) {   /* the masked queries, gathered (padding rows zero) */
                gather_map<T>((T *)m->gq, C, qa, as.ldq, m->qmap, pos, B * m->tq, C);
                flash_forward((bf16 *)m->go, b->lse, b->bits, (const bf16 *)m->gq, (const bf16 *)ka, (const bf16 *)va,
                              asq, ad);
            } else
                flash_forward((bf16 *)b->o, b->lse, b->bits, (const bf16 *)qa, (const bf16 *)ka, (const bf16 *)va, as, ad);
        } else
            attn_ref_forward<T>((T *)b->o, (T *)b->probs, (T *)m->scr1, qa, ka, va, as, ad, l);
        prof("fwd attention");
        if (sparse && l == last) {
            sparse_last_fwd<T>(m, b, x, pos, B, n, np_, hd, l);
            break;
        }
        post_attn_fwd<T>(m, post_dense(m, b, x), M, M, NULL, hd, l);
    }
    if (n == 0) return;   /* nothing masked: no loss, no gradient (as the CPU trainer) */

    /* MLM head at the n masked positions, as np_ = n rounded up to HEAD_ROUND rows whose
     * padding is zero (so the products see few distinct shapes and the padding adds nothing) */
    LnDrop none = {hd, -1, -1};
    gemm_set_autotune(0);   /* these shapes follow the masked count: take the heuristic's pick, no timing mid-run
                             * (timing them too was measured: no difference, 530k vs 531k tok/s) */
    if (!sparse) gather_rows<T>((T *)m->hm, (const T *)m->lay[last].h2, pos, n, C);   /* (sparse: already there) */
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->hm + (size_t)n * C, 0, (size_t)npad * C * m->esz, g_stream));
    linear_fwd<T>((T *)m->hu, (const T *)m->hm, W<T>(m, BT_T_HEAD_W, 0), W<T>(m, BT_T_HEAD_B, 0), np_, C, C);
    gelu_forward<T>((T *)m->hg, (const T *)m->hu, NULL, np_, C);
    layernorm_forward<T>((T *)m->hn, (T *)m->dh2, m->hmean, m->hrstd, (const T *)m->hg, NULL, NULL, PF(m, BT_T_HEAD_LN_W, 0),
                         PF(m, BT_T_HEAD_LN_B, 0), n, C, 1, eps, none);
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->hn + (size_t)n * C, 0, (size_t)npad * C * m->esz, g_stream));
    /* logits^T [Vp, np_] = word [Vp, C] . hn^T + bias (the padding rows give logits 0) */
    const T *wte = W<T>(m, BT_T_WORD_EMB, 0);
    prof("head fwd");
    gemm(m->logits, ty, m->Vp, wte, C, 1, m->hn, C, 0, ty, m->Vp, np_, C, 1.0f, 0.0f, W<T>(m, BT_T_DEC_B, 0), 1, 0, 0, 0);
    prof("head decoder GEMM");
    m->last_n = n;
    if (!backward) {   /* loss only: cross_entropy writes gradients, so keep the logits for btc_get_logits */
        cross_entropy<T>((T *)m->logits, m->lossrow, lab, n, m->V, m->Vp, 0.0f, 0);
        loss_accum_kernel<<<1, 256, 0, g_stream>>>(m->lossacc, m->lossrow, n);
        LAUNCH_CHECK("loss_accum_kernel");
        gemm_set_autotune(1);
        return;
    }
    cross_entropy<T>((T *)m->logits, m->lossrow, lab, n, m->V, m->Vp, scale, 1);
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->logits + (size_t)n * m->Vp, 0, (size_t)npad * m->Vp * m->esz, g_stream));
    prof("head CE");
    loss_accum_kernel<<<1, 256, 0, g_stream>>>(m->lossacc, m->lossrow, n);
    LAUNCH_CHECK("loss_accum_kernel");

    /* ---------------- backward: head (padding rows are zero all the way) */
    if (zero_side) CUDA_CHECK(cudaStreamWaitEvent(g_stream, m->ev_zero, 0));
    /* dword += dlogits^T hn: D [C, Vp] (ld C) = hn^T-view (C x np_) . dlogits-view^T (np_ x Vp) */
    gemm(GR(m, BT_T_WORD_EMB, 0), CUDA_R_32F, C, m->hn, C, 0, m->logits, m->Vp, 1, ty, C, m->Vp, np_, 1.0f, 1.0f, NULL,
         1, 0, 0, 0);
    colsum<T>(GR(m, BT_T_DEC_B, 0), (const T *)m->logits, np_, m->V, m->Vp, m->nsm);
    /* dhn [np_, C] = dlogits [np_, V] . word [V, C] */
    gemm(m->dh1, ty, C, wte, C, 0, m->logits, m->Vp, 0, ty, C, np_, m->Vp, 1.0f, 0.0f, NULL, 1, 0, 0, 0);
    prof("head decoder dW dX");
    layernorm_backward<T>((T *)m->dh2, NULL, GR(m, BT_T_HEAD_LN_W, 0), GR(m, BT_T_HEAD_LN_B, 0), NULL, (const T *)m->dh1,
                          (const T *)m->hg, m->hmean, m->hrstd, PF(m, BT_T_HEAD_LN_W, 0), n, C, 1, none, 0, m->nsm);
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->dh2 + (size_t)n * C, 0, (size_t)npad * C * m->esz, g_stream));
    gelu_backward_bias<T>((T *)m->dh2, (const T *)m->hu, NULL, GR(m, BT_T_HEAD_B, 0), np_, C, m->nsm);
    linear_bwd_w<T>(GR(m, BT_T_HEAD_W, 0), (const T *)m->dh2, (const T *)m->hm, np_, C, C);
    linear_bwd_x<T>((T *)m->dh1, (const T *)m->dh2, W<T>(m, BT_T_HEAD_W, 0), np_, C, C, 0.0f);
    gemm_set_autotune(1);
    if (!sparse) {   /* (sparse: the last layer takes dh1 as it is) */
        CUDA_CHECK(cudaMemsetAsync(m->cur, 0, (size_t)M * C * m->esz, g_stream));
        scatter_rows<T>((T *)m->cur, (const T *)m->dh1, pos, n, C);
    }
    prof("head bwd");

    /* ---------------- backward: layers */
    for (int l = c->layers - 1; l >= 0; l--) {
        LayerBuf *b = &m->lay[l];
        const T *x = l == 0 ? (const T *)m->x0 : (const T *)m->lay[l - 1].h2;
        if (sparse && l == last) sparse_last_bwd<T>(m, M, pos, n, np_, hd, l);
        else post_attn_bwd<T>(m, post_dense(m, b, x), M, M, NULL, hd, l);
        /* attention: gradients land in the packed dqkv (pairwise: d(Q S_h) in dqs) */
        const T *qkv = (const T *)b->qkv;
        const T *qa = pair ? (const T *)b->qs : qkv;
        const T *ka = qkv + (orig ? C : 0), *va = qkv + (np - 1) * C;
        T *dqkv = (T *)m->dqkv;
        T *dqa = pair ? (T *)m->dqs : dqkv;
        T *dka = dqkv + (orig ? C : 0), *dva = dqkv + (np - 1) * C;
        int k_is_q = c->attn == BT_ATTN_SYMMETRIC;
        if (gath && l == last) {
            /* gathered queries: dK, dV for every key row; dq for the gathered rows, then into place
             * (zero elsewhere; symmetric and pairwise: dK is a gradient of Q too, so it is summed into Q's bias) */
            float *gb = GR(m, BT_T_Q_B, l);
            AttnBiasGrad bg = {pair ? m->pbias : gb, orig ? gb + C : gb, gb + (np - 1) * C};
            flash_backward((bf16 *)m->gdq, (bf16 *)dka, (bf16 *)dva, m->dqacc, m->dsum, (const bf16 *)m->gdo,
                           (const bf16 *)m->go, (const bf16 *)m->gq, (const bf16 *)ka, (const bf16 *)va, b->lse, b->bits,
                           asq, ad, 0, bg);
            gather_map<T>(dqa, pair ? C : ldp, (const T *)m->gdq, C, m->qinv, NULL, M, C, k_is_q);
        } else if (m->flash)
        {
            /* the q/k/v bias gradients come out of the attention backward (column sums of dq, dk, dv);
             * pairwise: dk is a gradient of Q, dq is one of Q S_h (turned into Q's below) */
            float *gb = GR(m, BT_T_Q_B, l);
            AttnBiasGrad bg = {pair ? m->pbias : gb, orig ? gb + C : pair ? gb : NULL, gb + (np - 1) * C};
            flash_backward((bf16 *)dqa, (bf16 *)dka, (bf16 *)dva, m->dqacc, m->dsum, (const bf16 *)m->dO,
                           (const bf16 *)b->o, (const bf16 *)qa, (const bf16 *)ka, (const bf16 *)va, b->lse, b->bits, as,
                           ad, k_is_q, bg);
        }
        else
            attn_ref_backward<T>(dqa, dka, dva, (T *)m->scr1, (T *)m->scr2, (const T *)m->dO, qa, ka, va,
                                 (const T *)b->probs, as, ad, l, k_is_q);
        prof("bwd attention");
        if (pair) {
            /* dS_h += Q_h^T d(QS)_h (row-major [d, d]); dQ (= dk, already in place) += d(QS)_h S_h^T */
            gemm(GR(m, BT_T_PAIR, l), CUDA_R_32F, d, m->dqs, C, 0, qkv, ldp, 1, ty, d, d, M, 1.0f, 1.0f, NULL, NH,
                 d, d, (long long)d * d);
            gemm(dqkv, ty, ldp, W<T>(m, BT_T_PAIR, l), d, 1, m->dqs, C, 0, ty, d, M, d, 1.0f, 1.0f, NULL, NH,
                 (long long)d * d, d, d);
            if (m->flash) {   /* Q's bias gradient += the column sums of d(Q S_h) S_h^T */
                pair_bias_kernel<<<NH, d, 0, g_stream>>>(GR(m, BT_T_Q_B, l), m->pbias, PF(m, BT_T_PAIR, l), d);
                LAUNCH_CHECK("pair_bias_kernel");
            }
            prof("bwd pairwise");
        }
        /* the packed projections: one product each for weights, biases and the input gradient
         * (accumulated onto cur, which holds the residual's share) */
        linear_bwd_w<T>(GR(m, BT_T_Q_W, l), dqkv, x, M, ldp, C);
        prof("bwd QKV dW");
        if (!m->flash) colsum<T>(GR(m, BT_T_Q_B, l), dqkv, M, ldp, ldp, m->nsm);   /* (flash: summed above) */
        prof("bwd QKV bias");
        linear_bwd_x<T>((T *)m->cur, dqkv, W<T>(m, BT_T_Q_W, l), M, ldp, C, 1.0f);
        prof("bwd QKV dX");
    }
    /* embeddings: output dropout, LayerNorm, then the three tables */
    layernorm_backward<T>((T *)m->dres, NULL, GR(m, BT_T_EMB_LN_W, 0), GR(m, BT_T_EMB_LN_B, 0), NULL, (const T *)m->cur,
                          (const T *)m->r0, m->mean0, m->rstd0, PF(m, BT_T_EMB_LN_W, 0), M, C, T_, emb_drop, 1, m->nsm);
    prof("bwd embeddings");
    embed_backward<T>(GR(m, BT_T_WORD_EMB, 0), GR(m, BT_T_POS_EMB, 0), GR(m, BT_T_TYPE_EMB, 0), m->embtmp,
                      (const T *)m->dres, inputs, B, T_, C, c->pad_id, m->nsm);
    prof("bwd embeddings");
}

extern "C" void btc_forward_backward_async(btc_model *m, const bt_batch *b, int backward, int dropout, uint64_t seed,
                                           float scale, int *n_labels) {
    int B = b->B, M = B * m->T;
    if (B < 1 || B > m->maxB || b->T != m->T)
        cu_fail("btc", "btc_forward_backward", "micro-batch larger than allocated or wrong sequence length", __FILE__, __LINE__);
    /* stage the batch in a pinned slot: raw ids and per-sample offsets (masked here, on the
     * device), or inputs, masked positions and labels masked by the host */
    int s = m->slot;
    m->slot = (s + 1) % NSLOTS;
    CUDA_CHECK(cudaEventSynchronize(m->ev_slot[s]));
    int32_t *h = m->h_slot[s];
    int n = 0;
    if (b->ids) {
        int32_t *off = h;                          /* [B + 1], then the ids as uint16 */
        uint16_t *ids = (uint16_t *)(h + B + 1);
        off[0] = 0;
        for (int i = 0; i < B; i++) off[i + 1] = off[i] + b->counts[i];
        n = off[B];
        memcpy(m->h_off, off, (size_t)(B + 1) * sizeof *off);
        memcpy(ids, b->ids, (size_t)M * sizeof *ids);
        CUDA_CHECK(cudaMemcpyAsync(m->d_off, off, (size_t)(B + 1) * 4, cudaMemcpyHostToDevice, g_stream));
        CUDA_CHECK(cudaMemcpyAsync(m->d_ids, ids, (size_t)M * 2, cudaMemcpyHostToDevice, g_stream));
        CUDA_CHECK(cudaEventRecord(m->ev_slot[s], g_stream));
        mlm_mask_kernel<<<B, m->T < MASK_THREADS ? (m->T + 31) / 32 * 32 : MASK_THREADS, 0, g_stream>>>(
            m->d_in, m->d_in + M, m->d_in + 2 * M, m->d_maskerr, m->d_ids, m->d_off, m->T, m->V,
            b->mask_seed, b->mask_step, b->mask_sample0);
        LAUNCH_CHECK("mlm_mask_kernel");
    } else {
        for (int i = 0; i < M; i++) {
            h[i] = b->inputs[i];
            if (b->labels[i] != BT_IGNORE) { h[M + n] = i; h[2 * M + n] = b->labels[i]; n++; }
            if ((i + 1) % m->T == 0) m->h_off[(i + 1) / m->T] = n;   /* where each sample's positions end */
        }
        m->h_off[0] = 0;
        if (m->gathered) CUDA_CHECK(cudaMemcpyAsync(m->d_off, m->h_off, (size_t)(B + 1) * 4, cudaMemcpyHostToDevice, g_stream));
        /* the three arrays at their offsets (pos at M, labels at 2M) */
        CUDA_CHECK(cudaMemcpyAsync(m->d_in, h, (size_t)M * 4, cudaMemcpyHostToDevice, g_stream));
        CUDA_CHECK(cudaMemcpyAsync(m->d_in + M, h + M, (size_t)n * 4, cudaMemcpyHostToDevice, g_stream));
        CUDA_CHECK(cudaMemcpyAsync(m->d_in + 2 * M, h + 2 * M, (size_t)n * 4, cudaMemcpyHostToDevice, g_stream));
        CUDA_CHECK(cudaEventRecord(m->ev_slot[s], g_stream));
    }
    if (n_labels) *n_labels = n;
    {   /* the last layer's gathered queries: the most masked positions of a sample, rounded up to 128 */
        int mx = 0;
        for (int i = 0; i < B; i++) if (m->h_off[i + 1] - m->h_off[i] > mx) mx = m->h_off[i + 1] - m->h_off[i];
        m->tq = (mx + 127) / 128 * 128;
        if (m->tq < 128) m->tq = 128;
        if (m->tq > m->T) m->tq = m->T;
    }
    if (head_pad(n) > m->cap) {   /* rare: more masked positions than planned for */
        CUDA_CHECK(cudaStreamSynchronize(g_stream));
        alloc_head(m, n + n / 4);
    }
    DropCtx dc = drop_ctx(seed, b->step, (int)b->sample0, dropout ? 1.0f : 0.0f);
    dc.on = dropout != 0;
    if (m->prec == BTC_FP32) run_pass<float>(m, B, n, backward, dc, scale);
    else run_pass<bf16>(m, B, n, backward, dc, scale);
}

extern "C" double btc_loss_wait(btc_model *m) {
    CUDA_CHECK(cudaMemcpyAsync(m->h_loss, m->lossacc, sizeof(double), cudaMemcpyDeviceToHost, g_stream));
    CUDA_CHECK(cudaMemsetAsync(m->lossacc, 0, sizeof(double), g_stream));
    CUDA_CHECK(cudaMemcpyAsync(m->h_maskerr, m->d_maskerr, sizeof(int), cudaMemcpyDeviceToHost, g_stream));
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    if (*m->h_maskerr) {
        char msg[160];
        snprintf(msg, sizeof msg, "sample %d of a micro-batch: the device chose a different number of positions than "
                 "the host counted (bt_mask_count)", *m->h_maskerr - 1);
        cu_fail("btc", "mlm_mask_kernel", msg, __FILE__, __LINE__);
    }
    return *m->h_loss;
}

/* The masked batch of the last pass as the host would have built it. */
extern "C" void btc_get_batch(btc_model *m, int32_t *inputs, int32_t *labels, int B) {
    size_t M = (size_t)B * m->T;
    int32_t *h = (int32_t *)malloc(3 * M * 4);
    if (!h) cu_fail("btc", "btc_get_batch", "out of host memory", __FILE__, __LINE__);
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    CUDA_CHECK(cudaMemcpy(h, m->d_in, 3 * M * 4, cudaMemcpyDeviceToHost));
    memcpy(inputs, h, M * 4);
    for (size_t i = 0; i < M; i++) labels[i] = BT_IGNORE;
    for (int i = 0; i < m->last_n; i++) labels[h[M + i]] = h[2 * M + i];
    free(h);
}

extern "C" double btc_forward_backward(btc_model *m, const bt_batch *b, int backward, int dropout, uint64_t seed,
                                       float scale, int *n_labels) {
    btc_loss_wait(m);   /* start from zero */
    btc_forward_backward_async(m, b, backward, dropout, seed, scale, n_labels);
    return btc_loss_wait(m);
}

/* logits of the last pass (only meaningful after a pass without backward,
 * whose cross-entropy leaves the logits in place) */
template <typename T> __global__ void logits_out_kernel(float *out, const T *lg, int n, int V, int ld) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n * V) return;
    out[i] = to_f(lg[(i / V) * ld + i % V]);
}
extern "C" void btc_get_logits(btc_model *m, float *logits, int n) {
    float *tmp = (float *)cu_alloc((size_t)n * m->V * 4, "logits copy");
    if (m->prec == BTC_FP32)
        logits_out_kernel<float><<<ceil_div((size_t)n * m->V, 256), 256, 0, g_stream>>>(tmp, (const float *)m->logits, n, m->V, m->Vp);
    else
        logits_out_kernel<bf16><<<ceil_div((size_t)n * m->V, 256), 256, 0, g_stream>>>(tmp, (const bf16 *)m->logits, n, m->V, m->Vp);
    LAUNCH_CHECK("logits_out_kernel");
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    CUDA_CHECK(cudaMemcpy(logits, tmp, (size_t)n * m->V * 4, cudaMemcpyDeviceToHost));
    cu_free(tmp);
}

extern "C" int btc_allreduce_grads(btc_model *m, btc_sum_fn sum, void *ctx, char *err, size_t errlen) {
    /* before the norm; the loss normaliser (scale) already counts the masked positions of the global batch */
    if (!sum) return 0;
    zero_now(m);   /* a rank without samples in this update still adds its zeros */
    return sum(ctx, m->grad, m->np, (void *)g_stream, err, errlen);
}

__global__ static void clip_kernel(float *normclip, float clip) {
    /* clip factor exactly as bt_clip_coef: min(1, clip / (norm + 1e-6)) in double, 1 when clip <= 0 */
    double norm = normclip[0];
    double cf = clip > 0.0f ? (double)clip / (norm + 1e-6) : 1.0;
    normclip[1] = cf < 1.0 ? (float)cf : 1.0f;
}

extern "C" double btc_adamw_step(btc_model *m, const bt_optim_cfg *o, long t, double lr) {
    zero_now(m);
    prof("(other)");
    sumsq_kernel<<<m->nchunks, 256, 0, g_stream>>>(m->partials, m->grad, m->chunks);
    LAUNCH_CHECK("sumsq_kernel");
    norm_kernel<<<1, 1024, 0, g_stream>>>(m->normclip, m->partials, m->nchunks, 0.0f);
    LAUNCH_CHECK("norm_kernel");
    clip_kernel<<<1, 1, 0, g_stream>>>(m->normclip, o->clip);
    LAUNCH_CHECK("clip_kernel");
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    AdamHyper h;
    h.b1 = o->beta1; h.b2 = o->beta2; h.eps = o->eps;
    h.step = (float)(lr / bc1);
    h.bc2_sqrt = (float)sqrt(bc2);
    h.decay = (float)(1.0 - lr * o->weight_decay);
    if (m->prec == BTC_BF16)
        adamw_kernel<bf16><<<m->nchunks, 256, 0, g_stream>>>(m->p, (bf16 *)m->pc, m->m1, m->m2, m->grad, m->chunks, m->normclip, h);
    else
        adamw_kernel<float><<<m->nchunks, 256, 0, g_stream>>>(m->p, (float *)NULL, m->m1, m->m2, m->grad, m->chunks, m->normclip, h);
    LAUNCH_CHECK("adamw_kernel");
    prof("norm + AdamW");
    CUDA_CHECK(cudaMemcpyAsync(m->h_norm, m->normclip, 2 * sizeof(float), cudaMemcpyDeviceToHost, g_stream));
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    return m->h_norm[0];
}
