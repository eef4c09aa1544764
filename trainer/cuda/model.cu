/* model.cu - the MLM model on the GPU: buffers, forward, backward, AdamW.
 * The interface is gpu.h; the buffers are declared in model.cuh, the last
 * layer at the masked rows is masked_rows.cu, the kernels live in one
 * header per family.
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
 * the MLM head reads (masked_rows.cu; btc_opts.dense_last turns that off).
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
#include "trainer/cuda/model.cuh"
#include "trainer/cuda/layernorm.cuh"
#include "trainer/cuda/classifier.cuh"
#include "trainer/cuda/mask.cuh"
#include <math.h>
#include <string.h>

static int g_inited;

/* Profiling (btc_profile): an event after each stage of one pass, summed by
 * stage name over the layers.  Off unless asked for: events cost nothing
 * then. */
#define PROF_MAX 4096
static int g_prof;
static int g_nev;
static cudaEvent_t g_ev[PROF_MAX];
static const char *g_evname[PROF_MAX];
void prof(const char *name) {
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

/* ------------------------------------------------------------ buffers
 * The activations, the backward's scratch and the per-batch inputs are
 * carved out of one allocation, the masked rows' buffers out of a second
 * one (regrown when a micro-batch masks more positions than planned): as
 * llm.c's ActivationTensors and malloc_and_point.  alloc_buffers and
 * alloc_head list every buffer (where its pointer lives, its size, what it
 * is for; size 0: absent, NULL); carve makes the one allocation and points
 * each at a 256-byte boundary, the alignment cudaMalloc gives, so that
 * cuBLASLt sees the alignments it saw with one allocation each.  When the
 * block does not fit, the out-of-memory message names its largest buffer. */
struct BufPlan {
    int n, cap;
    struct { void *slot; size_t bytes; const char *what; } *e;   /* slot: the address of a T* */
};
template <typename P> static void plan(BufPlan *p, P *&ptr, size_t bytes, const char *what) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->e = (decltype(p->e))realloc(p->e, p->cap * sizeof *p->e);
        if (!p->e) cu_fail("btc", "plan", "out of host memory", __FILE__, __LINE__);
    }
    p->e[p->n].slot = &ptr;
    p->e[p->n].bytes = bytes;
    p->e[p->n].what = what;
    p->n++;
}
/* Activation-typed (bf16 or fp32): n elements. */
template <typename P> static void plan_t(BufPlan *p, const btc_model *m, P *&ptr, size_t n, const char *what) {
    plan(p, ptr, n * m->esz, what);
}
static void *carve(BufPlan *p, const char *what) {
    size_t total = 0;
    int big = 0;
    for (int i = 0; i < p->n; i++) {
        total += (p->e[i].bytes + 255) / 256 * 256;
        if (p->e[i].bytes > p->e[big].bytes) big = i;
    }
    char name[256];
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) == cudaSuccess && total > fr && p->n > 0) {
        snprintf(name, sizeof name, "%s; the largest: %s, %.1f MiB", what, p->e[big].what, p->e[big].bytes / 1048576.0);
        what = name;
    }
    char *base = (char *)cu_alloc(total, what);
    size_t off = 0;
    for (int i = 0; i < p->n; i++) {
        void *at = p->e[i].bytes ? base + off : NULL;
        memcpy(p->e[i].slot, &at, sizeof at);   /* (the slot is a T*: no aliasing through void **) */
        off += (p->e[i].bytes + 255) / 256 * 256;
    }
    free(p->e);
    *p = BufPlan{};
    return base;
}

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

/* RowActs for `rows` rows (0: absent). */
static void plan_rows(BufPlan *p, const btc_model *m, RowActs *r, size_t rows) {
    const size_t C = m->C, F = m->F;
    plan_t(p, m, r->r1, rows * C, "activations: residual 1");
    plan_t(p, m, r->h1, rows * C, "activations: LayerNorm 1 output");
    plan_t(p, m, r->u, rows * F, "activations: FFN pre-GELU");
    plan_t(p, m, r->g, rows * F, "activations: FFN GELU output");
    plan_t(p, m, r->r2, rows * C, "activations: residual 2");
    plan(p, r->mean1, rows * 4, "LayerNorm statistics");
    plan(p, r->rstd1, rows * 4, "LayerNorm statistics");
    plan(p, r->mean2, rows * 4, "LayerNorm statistics");
    plan(p, r->rstd2, rows * 4, "LayerNorm statistics");
}

static void alloc_head(btc_model *m, int cap) {
    cap = head_pad(cap);
    cu_free(m->head_block);
    m->cap = cap;
    BufPlan p{};
    HeadBuf *h = &m->head;
    size_t rc = (size_t)cap * m->C, rf = (size_t)cap * m->F;
    plan_t(&p, m, h->in, rc, "MLM head input rows");
    plan_t(&p, m, h->pre_gelu, rc, "MLM head pre-GELU");
    plan_t(&p, m, h->gelu, rc, "MLM head GELU output");
    plan_t(&p, m, h->ln_out, rc, "MLM head LayerNorm output");
    plan_t(&p, m, h->scratch1, rc, "MLM head gradient scratch");
    plan_t(&p, m, h->scratch2, rc, "MLM head gradient scratch");
    plan_t(&p, m, h->logits, (size_t)cap * m->Vp, "MLM logits (masked positions x vocab)");
    plan(&p, h->mean, (size_t)cap * 4, "MLM head LayerNorm statistics");
    plan(&p, h->rstd, (size_t)cap * 4, "MLM head LayerNorm statistics");
    plan(&p, h->loss, (size_t)cap * 4, "per-position losses");
    LastRowsBuf *r = &m->last;
    const int s = m->sparse_last;   /* (else absent) */
    plan_t(&p, m, r->o, s ? rc : 0, "last layer: attention output at the masked rows");
    plan_rows(&p, m, &r->rows, s ? cap : 0);
    plan_t(&p, m, r->dres, s ? rc : 0, "last layer: gradient scratch");
    plan_t(&p, m, r->dy, s ? rc : 0, "last layer: gradient scratch");
    plan_t(&p, m, r->du, s ? rf : 0, "last layer: gradient scratch (FFN)");
    m->head_block = carve(&p, "the MLM head's buffers (masked rows)");
}

/* Everything a micro-batch of maxB x T needs, but the masked rows' buffers. */
static void alloc_buffers(btc_model *m) {
    const bt_config *c = &m->c;
    const size_t maxB = m->maxB, T = m->T, M = maxB * T, C = m->C, F = m->F, NH = m->NH;
    const int pair = c->attn == BT_ATTN_PAIRWISE, flash = m->flash;
    BufPlan p{};
    plan(&p, m->d_in, 3 * M * 4, "input ids, masked positions and labels");
    plan(&p, m->d_ids, M * 2, "raw input ids");
    plan(&p, m->d_off, (maxB + 1) * 4, "masked positions per sample");
    plan(&p, m->d_maskerr, 4, "masking check");
    plan_t(&p, m, m->x0, M * C, "embedding output");
    plan_t(&p, m, m->r0, M * C, "embedding sum");
    plan(&p, m->mean0, M * 4, "embedding LayerNorm statistics");
    plan(&p, m->rstd0, M * 4, "embedding LayerNorm statistics");
    for (int l = 0; l < c->layers; l++) {
        LayerBuf *b = &m->lay[l];
        plan_t(&p, m, b->qkv, M * C * m->nproj, "activations: query/key/value");
        plan_t(&p, m, b->qs, pair ? M * C : 0, "activations: Q S_h");
        plan_t(&p, m, b->o, M * C, "activations: attention output");
        plan(&p, b->lse, flash ? maxB * NH * T * 4 : 0, "attention log-sum-exp");
        plan(&p, b->bits, flash ? maxB * NH * T * T / 8 : 0, "attention dropout bits");
        plan_t(&p, m, b->probs, flash ? 0 : maxB * NH * T * T, "attention probabilities [B, heads, T, T]");
        /* the last layer's rows after its attention live in the masked rows' buffers (sparse_last) */
        const size_t rows = m->sparse_last && l == c->layers - 1 ? 0 : M;
        plan_rows(&p, m, &b->rows, rows);
        plan_t(&p, m, b->h2, rows * C, "activations: layer output");
    }
    plan_t(&p, m, m->cur, M * C, "gradient scratch");
    plan_t(&p, m, m->dres, M * C, "gradient scratch");
    plan_t(&p, m, m->dy, M * C, "gradient scratch");
    plan_t(&p, m, m->dqkv, M * C * m->nproj, "gradient scratch (query/key/value)");
    plan_t(&p, m, m->dqs, pair ? M * C : 0, "gradient scratch (Q S_h)");
    plan_t(&p, m, m->dO, M * C, "gradient scratch (attention output)");
    plan_t(&p, m, m->du, M * F, "gradient scratch (FFN)");
    plan(&p, m->dqacc, flash ? M * C * 4 : 0, "attention dQ accumulator (fp32)");
    plan(&p, m->dsum, flash ? maxB * NH * T * 4 : 0, "attention backward row sums");
    plan_t(&p, m, m->scr1, flash ? 0 : maxB * NH * T * T, "attention scores scratch [B, heads, T, T]");
    plan_t(&p, m, m->scr2, flash ? 0 : maxB * NH * T * T, "attention scores scratch [B, heads, T, T]");
    plan(&p, m->embtmp, T * C * 4, "embedding gradient scratch");
    plan(&p, m->pbias, C * 4, "pairwise bias-gradient scratch");
    GatherBuf *g = &m->gath;
    const size_t gm = m->gathered ? M : 0;
    plan_t(&p, m, g->q, gm * C, "last layer: gathered queries");
    plan_t(&p, m, g->o, gm * C, "last layer: attention output of the gathered queries");
    plan_t(&p, m, g->dout, gm * C, "last layer: gradient of that output");
    plan_t(&p, m, g->dq, gm * C, "last layer: gradient of the gathered queries");
    plan(&p, g->map, gm * 4, "last layer: query maps");
    plan(&p, g->rows, gm * 4, "last layer: query maps");
    plan(&p, g->inv, gm * 4, "last layer: query maps");
    plan(&p, m->lossacc, sizeof(double), "loss accumulator");
    plan(&p, m->normclip, 2 * sizeof(float), "gradient norm");
    plan(&p, m->partials, (size_t)m->nchunks * 4, "gradient norm partials");
    m->act_block = carve(&p, "activations and scratch (micro-batch of --micro-batch x seq)");
}

extern "C" btc_model *btc_new(const bt_layout *L, int maxB, int T, const btc_opts *o, char *err, size_t errlen) {
    const bt_config *c = &L->cfg;
    const btc_opts dflt = {BTC_BF16, BTC_ATTN_AUTO, 0};
    if (!o) o = &dflt;
    const int prec = o->precision, attn_impl = o->attn;
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
    m->sparse_last = !o->dense_last;
    m->np = build_internal_layout(m);
    m->hbuf = (float *)calloc(m->np, sizeof(float));   /* the padding stays zero */
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&m->nsm, cudaDevAttrMultiProcessorCount, dev));
    int ldp = m->nproj * c->hidden;
    AttnShape as = {maxB, T, m->NH, m->d, ldp, ldp, ldp, c->hidden};
    m->flash = prec == BTC_BF16 && attn_impl != BTC_ATTN_REF && flash_supported(as);
    if (attn_impl != BTC_ATTN_AUTO && attn_impl != BTC_ATTN_REF && !m->flash) {
        snprintf(err, errlen, "the flash attention kernels need bf16, head size 64 and a sequence length multiple of 128");
        free(m->ioff); free(m->hbuf); free(m);
        return NULL;
    }
    m->kernels = flash_kernels(attn_impl == BTC_ATTN_FLASH_MMA ? FLASH_MMA : attn_impl == BTC_ATTN_FLASH_WGMMA ? FLASH_WGMMA
                               : FLASH_AUTO, err, errlen);
    if (m->flash && m->kernels < 0) { free(m->ioff); free(m->hbuf); free(m); return NULL; }
    const size_t M = (size_t)maxB * T;
    m->p = (float *)cu_alloc(m->np * 4, "fp32 master weights");
    m->grad = (float *)cu_alloc(m->np * 4, "fp32 gradients");
    m->m1 = (float *)cu_alloc(m->np * 4, "AdamW first moments");
    m->m2 = (float *)cu_alloc(m->np * 4, "AdamW second moments");
    CUDA_CHECK(cudaMemset(m->p, 0, m->np * 4));
    CUDA_CHECK(cudaMemset(m->grad, 0, m->np * 4));
    CUDA_CHECK(cudaMemset(m->m1, 0, m->np * 4));
    CUDA_CHECK(cudaMemset(m->m2, 0, m->np * 4));
    m->pc = prec == BTC_FP32 ? (void *)m->p : cu_alloc(m->np * 2, "bf16 copy of the weights");
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

    m->gathered = m->flash && m->sparse_last;
    m->lay = (LayerBuf *)calloc(c->layers, sizeof(LayerBuf));
    alloc_buffers(m);
    int cap = (int)(M / 4) + 256;
    if ((size_t)cap > M) cap = (int)M;
    alloc_head(m, cap);
    CUDA_CHECK(cudaMemset(m->d_maskerr, 0, 4));
    CUDA_CHECK(cudaMemset(m->pbias, 0, m->C * 4));
    CUDA_CHECK(cudaMemset(m->lossacc, 0, sizeof(double)));

    m->h_off = (int32_t *)calloc((size_t)maxB + 1, sizeof(int32_t));
    for (int s = 0; s < NSLOTS; s++) {
        CUDA_CHECK(cudaMallocHost((void **)&m->h_slot[s], 3 * M * 4));
        CUDA_CHECK(cudaEventCreateWithFlags(&m->ev_slot[s], cudaEventDisableTiming));
    }
    CUDA_CHECK(cudaMallocHost((void **)&m->h_maskerr, 4));
    CUDA_CHECK(cudaMallocHost((void **)&m->h_loss, sizeof(double)));
    CUDA_CHECK(cudaMallocHost((void **)&m->h_norm, 2 * sizeof(float)));
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
    void *bufs[] = {m->p, m->grad, m->m1, m->m2, m->chunks, m->act_block, m->head_block};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cu_free(bufs[i]);
    if (m->pc != m->p) cu_free(m->pc);
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

template <typename T>
void post_attn_fwd(btc_model *m, const PostAttn &p, int rows, int prow, const int32_t *rowmap, DropCtx hd, int l) {
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
void post_attn_bwd(btc_model *m, const PostAttn &p, int rows, int prow, const int32_t *rowmap, DropCtx hd, int l) {
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
/* The buffers of post_attn for a dense layer (masked_rows.cu: for the last layer at its masked rows). */
static PostAttn post_dense(btc_model *m, LayerBuf *b, const void *x) {
    const RowActs *r = &b->rows;
    PostAttn p = {b->o, x, r->r1, r->h1, r->u, r->g, r->r2, b->h2, r->mean1, r->rstd1, r->mean2, r->rstd2,
                  m->dy, m->dres, m->du, m->cur, m->cur, m->dO};
    return p;
}
template void post_attn_fwd<float>(btc_model *, const PostAttn &, int, int, const int32_t *, DropCtx, int);
template void post_attn_fwd<bf16>(btc_model *, const PostAttn &, int, int, const int32_t *, DropCtx, int);
template void post_attn_bwd<float>(btc_model *, const PostAttn &, int, int, const int32_t *, DropCtx, int);
template void post_attn_bwd<bf16>(btc_model *, const PostAttn &, int, int, const int32_t *, DropCtx, int);
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

    /* the attention dropout bits of every layer, on the side stream: they depend on no data, and
     * this integer work overlaps the memory-bound kernels of the main stream.  They start once
     * everything queued before (the previous pass's backward, which reads the old bits) is done. */
    /* the last layer's attention for the masked queries only: gathered rows b*tq + j */
    const int gath = m->gathered && n > 0;
    AttnShape asq = as;
    if (gath) {
        asq.ldq = C; asq.ldo = C; asq.Tq = m->tq; asq.qrows = m->gath.rows;
        gathered_maps(m, pos, B);
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
            pairwise_fwd<T>((T *)b->qs, C, qkv, ldp, W<T>(m, BT_T_PAIR, l), M, NH, d);
        prof("fwd pairwise Q.S");
        const T *qa = pair ? (const T *)b->qs : qkv;
        const T *ka = qkv + (orig ? C : 0), *va = qkv + (np - 1) * C;
        if (m->flash) {
            if (side_bits) CUDA_CHECK(cudaStreamWaitEvent(g_stream, m->ev_bits[l], 0));
            if (gath && l == last) {   /* the masked queries, gathered (padding rows zero) */
                gather_map<T>((T *)m->gath.q, C, qa, as.ldq, m->gath.map, pos, B * m->tq, C);
                flash_forward(m->kernels, (bf16 *)m->gath.o, b->lse, b->bits, (const bf16 *)m->gath.q, (const bf16 *)ka, (const bf16 *)va,
                              asq, ad);
            } else
                flash_forward(m->kernels, (bf16 *)b->o, b->lse, b->bits, (const bf16 *)qa, (const bf16 *)ka, (const bf16 *)va, as, ad);
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
    if (!sparse) gather_rows<T>((T *)m->head.in, (const T *)m->lay[last].h2, pos, n, C);   /* (sparse: already there) */
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->head.in + (size_t)n * C, 0, (size_t)npad * C * m->esz, g_stream));
    linear_fwd<T>((T *)m->head.pre_gelu, (const T *)m->head.in, W<T>(m, BT_T_HEAD_W, 0), W<T>(m, BT_T_HEAD_B, 0), np_, C, C);
    gelu_forward<T>((T *)m->head.gelu, (const T *)m->head.pre_gelu, NULL, np_, C);
    layernorm_forward<T>((T *)m->head.ln_out, (T *)m->head.scratch2, m->head.mean, m->head.rstd, (const T *)m->head.gelu, NULL, NULL, PF(m, BT_T_HEAD_LN_W, 0),
                         PF(m, BT_T_HEAD_LN_B, 0), n, C, 1, eps, none);
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->head.ln_out + (size_t)n * C, 0, (size_t)npad * C * m->esz, g_stream));
    /* logits [np_, Vp] = hn [np_, C] . word^T + bias: the decoder is the word embedding (the padding rows give logits 0) */
    const T *wte = W<T>(m, BT_T_WORD_EMB, 0);
    prof("head fwd");
    linear_fwd<T>((T *)m->head.logits, (const T *)m->head.ln_out, wte, W<T>(m, BT_T_DEC_B, 0), np_, m->Vp, C);
    prof("head decoder GEMM");
    m->last_n = n;
    if (!backward) {   /* loss only */
        cross_entropy<T>((T *)m->head.logits, m->head.loss, lab, n, m->V, m->Vp, 0.0f, 0);
        loss_accumulate(m->lossacc, m->head.loss, n);
        gemm_set_autotune(1);
        return;
    }
    cross_entropy<T>((T *)m->head.logits, m->head.loss, lab, n, m->V, m->Vp, scale, 1);
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->head.logits + (size_t)n * m->Vp, 0, (size_t)npad * m->Vp * m->esz, g_stream));
    prof("head CE");
    loss_accumulate(m->lossacc, m->head.loss, n);

    /* ---------------- backward: head (padding rows are zero all the way) */
    if (zero_side) CUDA_CHECK(cudaStreamWaitEvent(g_stream, m->ev_zero, 0));
    /* dword [Vp, C] += dlogits^T hn */
    linear_bwd_w<T>(GR(m, BT_T_WORD_EMB, 0), (const T *)m->head.logits, (const T *)m->head.ln_out, np_, m->Vp, C);
    colsum<T>(GR(m, BT_T_DEC_B, 0), (const T *)m->head.logits, np_, m->V, m->Vp, m->nsm);
    /* dhn [np_, C] = dlogits [np_, Vp] . word [Vp, C] */
    linear_bwd_x<T>((T *)m->head.scratch1, (const T *)m->head.logits, wte, np_, m->Vp, C, 0.0f);
    prof("head decoder dW dX");
    layernorm_backward<T>((T *)m->head.scratch2, NULL, GR(m, BT_T_HEAD_LN_W, 0), GR(m, BT_T_HEAD_LN_B, 0), NULL, (const T *)m->head.scratch1,
                          (const T *)m->head.gelu, m->head.mean, m->head.rstd, PF(m, BT_T_HEAD_LN_W, 0), n, C, 1, none, 0, m->nsm);
    if (npad) CUDA_CHECK(cudaMemsetAsync((T *)m->head.scratch2 + (size_t)n * C, 0, (size_t)npad * C * m->esz, g_stream));
    gelu_backward_bias<T>((T *)m->head.scratch2, (const T *)m->head.pre_gelu, NULL, GR(m, BT_T_HEAD_B, 0), np_, C, m->nsm);
    linear_bwd_w<T>(GR(m, BT_T_HEAD_W, 0), (const T *)m->head.scratch2, (const T *)m->head.in, np_, C, C);
    linear_bwd_x<T>((T *)m->head.scratch1, (const T *)m->head.scratch2, W<T>(m, BT_T_HEAD_W, 0), np_, C, C, 0.0f);
    gemm_set_autotune(1);
    if (!sparse) {   /* (sparse: the last layer takes head.scratch1 as it is) */
        CUDA_CHECK(cudaMemsetAsync(m->cur, 0, (size_t)M * C * m->esz, g_stream));
        scatter_rows<T>((T *)m->cur, (const T *)m->head.scratch1, pos, n, C);
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
            flash_backward(m->kernels, (bf16 *)m->gath.dq, (bf16 *)dka, (bf16 *)dva, m->dqacc, m->dsum, (const bf16 *)m->gath.dout,
                           (const bf16 *)m->gath.o, (const bf16 *)m->gath.q, (const bf16 *)ka, (const bf16 *)va, b->lse, b->bits,
                           asq, ad, 0, bg);
            gather_map<T>(dqa, pair ? C : ldp, (const T *)m->gath.dq, C, m->gath.inv, NULL, M, C, k_is_q);
        } else if (m->flash)
        {
            /* the q/k/v bias gradients come out of the attention backward (column sums of dq, dk, dv);
             * pairwise: dk is a gradient of Q, dq is one of Q S_h (turned into Q's below) */
            float *gb = GR(m, BT_T_Q_B, l);
            AttnBiasGrad bg = {pair ? m->pbias : gb, orig ? gb + C : pair ? gb : NULL, gb + (np - 1) * C};
            flash_backward(m->kernels, (bf16 *)dqa, (bf16 *)dka, (bf16 *)dva, m->dqacc, m->dsum, (const bf16 *)m->dO,
                           (const bf16 *)b->o, (const bf16 *)qa, (const bf16 *)ka, (const bf16 *)va, b->lse, b->bits, as,
                           ad, k_is_q, bg);
        }
        else
            attn_ref_backward<T>(dqa, dka, dva, (T *)m->scr1, (T *)m->scr2, (const T *)m->dO, qa, ka, va,
                                 (const T *)b->probs, as, ad, l, k_is_q);
        prof("bwd attention");
        if (pair) {
            /* dS_h += Q_h^T d(QS)_h (row-major [d, d]); dQ (= dk, already in place) += d(QS)_h S_h^T */
            pairwise_bwd_s<T>(GR(m, BT_T_PAIR, l), (const T *)m->dqs, C, qkv, ldp, M, NH, d);
            pairwise_bwd_q<T>(dqkv, ldp, (const T *)m->dqs, C, W<T>(m, BT_T_PAIR, l), M, NH, d);
            if (m->flash) {   /* Q's bias gradient += the column sums of d(Q S_h) S_h^T */
                pair_bias_grad(GR(m, BT_T_Q_B, l), m->pbias, PF(m, BT_T_PAIR, l), NH, d);
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
    gathered_rows_per_sample(m, B);
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

extern "C" int btc_allreduce_grads(btc_model *m, btc_sum_fn sum, void *ctx, char *err, size_t errlen) {
    /* before the norm; the loss normaliser (scale) already counts the masked positions of the global batch */
    if (!sum) return 0;
    zero_now(m);   /* a rank without samples in this update still adds its zeros */
    return sum(ctx, m->grad, m->np, (void *)g_stream, err, errlen);
}

extern "C" double btc_adamw_step(btc_model *m, const bt_optim_cfg *o, long t, double lr) {
    zero_now(m);
    prof("(other)");
    sumsq_kernel<<<m->nchunks, 256, 0, g_stream>>>(m->partials, m->grad, m->chunks);
    LAUNCH_CHECK("sumsq_kernel");
    norm_kernel<<<1, 1024, 0, g_stream>>>(m->normclip, m->partials, m->nchunks, 0.0f);
    LAUNCH_CHECK("norm_kernel");
    clip_factor(m->normclip, o->clip);
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
