/* cpu.c - the MLM model on the CPU: forward, loss, backward.
 *
 * Shapes: BT = B*T tokens, h hidden, f FFN size, H heads of size d, M the
 * masked positions of the micro-batch, V the vocab.  Activations are kept
 * for the backward pass (no recomputation except dropout masks, which are a
 * pure function of their key).  Matrices are row-major; Linear weights are
 * [out, in], so a layer computes y = x W^T + b.
 *
 * Attention, one path for the three variants, per sample and head:
 *   A = Q (original, symmetric) or Q S_h (pairwise)
 *   K = x Wk^T + bk (original) or Q (symmetric, pairwise)
 *   P = softmax(A K^T / sqrt(d));  ctx = dropout(P) V
 * and backward: dA = dS K, dK = dS^T A; pairwise: dQ += dA S^T, dS_h += Q^T dA;
 * when K is Q its gradient is added to dQ (the query weight is used twice). */
#include "trainer/cpu.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bt_cpu {
    const bt_layout *L;
    int maxB, T;
    /* forward */
    float *emb_xhat, *emb_rstd;   /* [BT,h], [BT] */
    float *xs;                    /* [(layers+1), BT, h]: input of each layer, then the encoder output */
    struct act {
        float *q, *k, *a, *v;     /* [BT,h]; k only for original, a only for pairwise (Q S) */
        float *p;                 /* [B,H,T,T] softmax output (before dropout) */
        float *ctx;               /* [BT,h] */
        float *ln1_xhat, *ln1_rstd, *ln1_out;
        float *f1, *g;            /* [BT,f] pre-GELU, post-GELU */
        float *ln2_xhat, *ln2_rstd;
    } *act;
    int *pos;                     /* [BT] the labelled positions of the batch */
    float *hx, *hd, *hg, *hn_xhat, *hn_rstd, *hn;  /* head, [M,h] */
    float *logits;                /* [M,V]; then its gradient (grown on demand: M is ~15% of BT) */
    size_t logits_rows;
    /* backward scratch */
    float *dx, *da, *dt, *dq, *dk, *dv, *dctx, *dA;  /* [BT,h] */
    float *df;                    /* [BT,f] */
    float *dp;                    /* [B,H,T,T] */
    float *dS;                    /* [B,H,d,d] */
    float *dh;                    /* [M,h] */
};

static void *xcalloc(size_t n, size_t sz, int *bad) {
    if (!n) n = 1;
    void *p = calloc(n, sz);
    if (!p) *bad = 1;
    return p;
}

bt_cpu *bt_cpu_new(const bt_layout *L, int maxB, int T, char *err, size_t errlen) {
    const bt_config *c = &L->cfg;
    if (maxB < 1 || T < 1 || T > c->max_pos) {
        snprintf(err, errlen, "sequence length %d not in 1..%d (or empty batch)", T, c->max_pos);
        return NULL;
    }
    bt_cpu *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errlen, "out of memory"); return NULL; }
    m->L = L; m->maxB = maxB; m->T = T;
    size_t BT = (size_t)maxB * T, h = c->hidden, f = c->ffn, H = c->heads, d = h / H, V = c->vocab_size;
    int bad = 0;
    m->emb_xhat = xcalloc(BT * h, 4, &bad); m->emb_rstd = xcalloc(BT, 4, &bad);
    m->xs = xcalloc((size_t)(c->layers + 1) * BT * h, 4, &bad);
    m->act = xcalloc((size_t)c->layers, sizeof *m->act, &bad);
    for (int l = 0; !bad && l < c->layers; l++) {
        struct act *a = &m->act[l];
        a->q = xcalloc(BT * h, 4, &bad);
        if (c->attn == BT_ATTN_ORIGINAL) a->k = xcalloc(BT * h, 4, &bad);
        if (c->attn == BT_ATTN_PAIRWISE) a->a = xcalloc(BT * h, 4, &bad);
        a->v = xcalloc(BT * h, 4, &bad);
        a->p = xcalloc((size_t)maxB * H * T * T, 4, &bad);
        a->ctx = xcalloc(BT * h, 4, &bad);
        a->ln1_xhat = xcalloc(BT * h, 4, &bad); a->ln1_rstd = xcalloc(BT, 4, &bad); a->ln1_out = xcalloc(BT * h, 4, &bad);
        a->f1 = xcalloc(BT * f, 4, &bad); a->g = xcalloc(BT * f, 4, &bad);
        a->ln2_xhat = xcalloc(BT * h, 4, &bad); a->ln2_rstd = xcalloc(BT, 4, &bad);
    }
    m->pos = xcalloc(BT, sizeof *m->pos, &bad);
    m->hx = xcalloc(BT * h, 4, &bad); m->hd = xcalloc(BT * h, 4, &bad); m->hg = xcalloc(BT * h, 4, &bad);
    m->hn_xhat = xcalloc(BT * h, 4, &bad); m->hn_rstd = xcalloc(BT, 4, &bad); m->hn = xcalloc(BT * h, 4, &bad);
    m->logits_rows = BT / 4 + 1;
    m->logits = xcalloc(m->logits_rows * V, 4, &bad);
    m->dx = xcalloc(BT * h, 4, &bad); m->da = xcalloc(BT * h, 4, &bad); m->dt = xcalloc(BT * h, 4, &bad);
    m->dq = xcalloc(BT * h, 4, &bad); m->dk = xcalloc(BT * h, 4, &bad); m->dv = xcalloc(BT * h, 4, &bad);
    m->dctx = xcalloc(BT * h, 4, &bad); m->dA = xcalloc(BT * h, 4, &bad);
    m->df = xcalloc(BT * f, 4, &bad);
    m->dp = xcalloc((size_t)maxB * H * T * T, 4, &bad);
    m->dS = xcalloc((size_t)maxB * H * d * d, 4, &bad);
    m->dh = xcalloc(BT * h, 4, &bad);
    if (bad) { bt_cpu_free(m); snprintf(err, errlen, "out of memory for activations (batch %d x %d)", maxB, T); return NULL; }
    return m;
}

void bt_cpu_free(bt_cpu *m) {
    if (!m) return;
    if (m->act) for (int l = 0; l < m->L->cfg.layers; l++) {
        struct act *a = &m->act[l];
        free(a->q); free(a->k); free(a->a); free(a->v); free(a->p); free(a->ctx);
        free(a->ln1_xhat); free(a->ln1_rstd); free(a->ln1_out); free(a->f1); free(a->g);
        free(a->ln2_xhat); free(a->ln2_rstd);
    }
    free(m->act); free(m->emb_xhat); free(m->emb_rstd); free(m->xs); free(m->pos);
    free(m->hx); free(m->hd); free(m->hg); free(m->hn_xhat); free(m->hn_rstd); free(m->hn); free(m->logits);
    free(m->dx); free(m->da); free(m->dt); free(m->dq); free(m->dk); free(m->dv); free(m->dctx); free(m->dA);
    free(m->df); free(m->dp); free(m->dS); free(m->dh);
    free(m);
}

/* ------------------------------------------------------------ kernels */

/* Dot product with a fixed summation order (8 lanes, then a fixed tree). */
static inline float dot(const float *a, const float *b, int n) {
    float s[8] = { 0 };
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) s[j] += a[k + j] * b[k + j];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; k < n; k++) r += a[k] * b[k];
    return r;
}

static inline void axpy(float *y, float a, const float *x, int n) {
    for (int k = 0; k < n; k++) y[k] += a * x[k];
}

enum { TILE_M = 16, TILE_N = 64 };

/* A loop runs on several threads only when it has enough work to pay for
 * waking them (tiny test models run faster on one). */
#define PAR(work) ((work) >= ((size_t)1 << 20))

/* out[M,N] = in[M,K] W[N,K]^T (+ bias[N]).  Tiled so that a block of W is
 * reused by TILE_M rows; each output is one dot product. */
static void linear_fwd(float *out, const float *in, const float *W, const float *bias, int M, int N, int K) {
    int nbm = (M + TILE_M - 1) / TILE_M, nbn = (N + TILE_N - 1) / TILE_N;
#pragma omp parallel for schedule(static) if (PAR((size_t)M * N * K))
    for (int tb = 0; tb < nbm * nbn; tb++) {
        int m0 = tb / nbn * TILE_M, n0 = tb % nbn * TILE_N;
        int m1 = m0 + TILE_M < M ? m0 + TILE_M : M, n1 = n0 + TILE_N < N ? n0 + TILE_N : N;
        for (int m = m0; m < m1; m++)
            for (int n = n0; n < n1; n++)
                out[(size_t)m * N + n] = dot(in + (size_t)m * K, W + (size_t)n * K, K) + (bias ? bias[n] : 0.0f);
    }
}

/* din[M,K] += dout[M,N] W[N,K] */
static void linear_bwd_in(float *din, const float *dout, const float *W, int M, int N, int K) {
    int nbm = (M + TILE_M - 1) / TILE_M;
#pragma omp parallel for schedule(static) if (PAR((size_t)M * N * K))
    for (int b = 0; b < nbm; b++) {
        int m0 = b * TILE_M, m1 = m0 + TILE_M < M ? m0 + TILE_M : M;
        for (int n0 = 0; n0 < N; n0 += TILE_N) {
            int n1 = n0 + TILE_N < N ? n0 + TILE_N : N;
            for (int m = m0; m < m1; m++)
                for (int n = n0; n < n1; n++) {
                    float g = dout[(size_t)m * N + n];
                    if (g != 0.0f) axpy(din + (size_t)m * K, g, W + (size_t)n * K, K);
                }
        }
    }
}

/* dW[N,K] += dout[M,N]^T in[M,K];  dbias[N] += sum_m dout[m,n] */
static void linear_bwd_w(float *dW, float *dbias, const float *dout, const float *in, int M, int N, int K) {
#pragma omp parallel for schedule(static) if (PAR((size_t)M * N * K))
    for (int n = 0; n < N; n++) {
        float *row = dW + (size_t)n * K;
        float sb = 0.0f;
        for (int m = 0; m < M; m++) {
            float g = dout[(size_t)m * N + n];
            sb += g;
            if (g != 0.0f) axpy(row, g, in + (size_t)m * K, K);
        }
        if (dbias) dbias[n] += sb;
    }
}

/* y = LN(x) * w + b over rows of n; keeps xhat and 1/std for the backward. */
static void layernorm_fwd(float *y, float *xhat, float *rstd, const float *x, const float *w, const float *b,
                          int rows, int n, float eps) {
#pragma omp parallel for schedule(static) if (PAR((size_t)rows * n * 4))
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++) s += xr[i];
        double mean = s / n;
        for (int i = 0; i < n; i++) { double t = xr[i] - mean; ss += t * t; }
        float rs = (float)(1.0 / sqrt(ss / n + (double)eps));
        rstd[r] = rs;
        for (int i = 0; i < n; i++) {
            float xh = (float)(xr[i] - mean) * rs;
            xhat[(size_t)r * n + i] = xh;
            y[(size_t)r * n + i] = xh * w[i] + b[i];
        }
    }
}

/* dx = LN backward of dy (dx may be dy: in place); dw, db += ... */
static void layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *xhat, const float *rstd,
                          const float *w, int rows, int n) {
#pragma omp parallel for schedule(static) if (PAR((size_t)rows * n * 4))
    for (int i = 0; i < n; i++) {
        float sw = 0, sb = 0;
        for (int r = 0; r < rows; r++) { float g = dy[(size_t)r * n + i]; sw += g * xhat[(size_t)r * n + i]; sb += g; }
        dw[i] += sw; db[i] += sb;
    }
#pragma omp parallel for schedule(static) if (PAR((size_t)rows * n * 4))
    for (int r = 0; r < rows; r++) {
        const float *g = dy + (size_t)r * n, *xh = xhat + (size_t)r * n;
        double s1 = 0, s2 = 0;
        for (int i = 0; i < n; i++) { float t = g[i] * w[i]; s1 += t; s2 += t * xh[i]; }
        float m1 = (float)(s1 / n), m2 = (float)(s2 / n), rs = rstd[r];
        float *o = dx + (size_t)r * n;
        for (int i = 0; i < n; i++) o[i] = rs * (g[i] * w[i] - m1 - xh[i] * m2);
    }
}

static inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
static inline float gelu_grad(float x) {
    return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
}

/* Dropout multiplier of element e of a stream: 0 or 1/(1-p) (model.h's draw). */
static inline float keep(uint64_t key, uint64_t e, float p) {
    return bt_dropout_keep(key, e, bt_dropout_threshold(p)) ? 1.0f / (1.0f - p) : 0.0f;
}

/* x[t*n + i] *= dropout multiplier, per sample b of the micro-batch. */
static void dropout_apply(float *x, const bt_batch *bb, int T, int n, int layer, int site, float p, uint64_t seed) {
    if (p <= 0.0f) return;
#pragma omp parallel for schedule(static) if (PAR((size_t)bb->B * T * n * 4))
    for (int b = 0; b < bb->B; b++) {
        uint64_t key = bt_dropout_key(seed, bb->step, bb->sample0 + (uint64_t)b, layer, site);
        float *xb = x + (size_t)b * T * n;
        const uint32_t thr = bt_dropout_threshold(p);
        const float s = 1.0f / (1.0f - p);
        size_t ne = (size_t)T * n, e = 0;
        for (; e + 4 <= ne; e += 4) {   /* a word serves four elements */
            uint64_t w = bt_dropout_word(key, e >> 2);
            for (int k = 0; k < 4; k++) xb[e + k] *= bt_dropout_slot(w, k, thr) ? s : 0.0f;
        }
        for (; e < ne; e++) xb[e] *= keep(key, e, p);
    }
}

/* ------------------------------------------------------------ the pass */

#define PARAM(kind, l) (P + bt_off(L, kind, l))
#define GRAD(kind, l) (G + bt_off(L, kind, l))

double bt_cpu_forward_backward(bt_cpu *m, const float *P, float *G, const bt_batch *bb,
                               int dropout, uint64_t seed, float scale, int *n_labels, float *logits_out) {
    const bt_layout *L = m->L;
    const bt_config *c = &L->cfg;
    const int B = bb->B, T = bb->T, BT = B * T, h = c->hidden, f = c->ffn, H = c->heads, d = h / H;
    const int V = c->vocab_size;
    const int has_key = c->attn == BT_ATTN_ORIGINAL, has_pair = c->attn == BT_ATTN_PAIRWISE;
    const float ph = dropout ? c->hidden_dropout : 0.0f, pa = dropout ? c->attn_dropout : 0.0f;
    const float att_scale = 1.0f / sqrtf((float)d);
    if (B > m->maxB || T != m->T) { if (n_labels) *n_labels = -1; return NAN; }

    /* embeddings: x0 = dropout(LN(word[id] + pos[t] + type[0])) */
    float *x0 = m->xs;
    {
        const float *we = PARAM(BT_T_WORD_EMB, 0), *pe = PARAM(BT_T_POS_EMB, 0), *te = PARAM(BT_T_TYPE_EMB, 0);
        for (int i = 0; i < BT; i++) {
            const float *w = we + (size_t)bb->inputs[i] * h, *p = pe + (size_t)(i % T) * h;
            for (int k = 0; k < h; k++) m->dt[(size_t)i * h + k] = w[k] + p[k] + te[k];
        }
        layernorm_fwd(x0, m->emb_xhat, m->emb_rstd, m->dt, PARAM(BT_T_EMB_LN_W, 0), PARAM(BT_T_EMB_LN_B, 0), BT, h, c->ln_eps);
        dropout_apply(x0, bb, T, h, -1, BT_DROP_EMB, ph, seed);
    }

    /* encoder */
    for (int l = 0; l < c->layers; l++) {
        struct act *a = &m->act[l];
        const float *x = m->xs + (size_t)l * BT * h;
        float *y = m->xs + (size_t)(l + 1) * BT * h;
        linear_fwd(a->q, x, PARAM(BT_T_Q_W, l), PARAM(BT_T_Q_B, l), BT, h, h);
        if (has_key) linear_fwd(a->k, x, PARAM(BT_T_K_W, l), PARAM(BT_T_K_B, l), BT, h, h);
        linear_fwd(a->v, x, PARAM(BT_T_V_W, l), PARAM(BT_T_V_B, l), BT, h, h);
        const float *K = has_key ? a->k : a->q;
        const float *A = has_pair ? a->a : a->q;
        if (has_pair) {   /* A_h = Q_h S_h: a[t, hd*d + j] = sum_i q[t, hd*d + i] S[hd][i][j] */
            const float *S = PARAM(BT_T_PAIR, l);
#pragma omp parallel for schedule(static) if (PAR((size_t)BT * h * d))
            for (int t = 0; t < BT; t++)
                for (int hd = 0; hd < H; hd++) {
                    float *o = a->a + (size_t)t * h + hd * d;
                    const float *q = a->q + (size_t)t * h + hd * d, *Sh = S + (size_t)hd * d * d;
                    for (int j = 0; j < d; j++) o[j] = 0.0f;
                    for (int i = 0; i < d; i++) axpy(o, q[i], Sh + (size_t)i * d, d);
                }
        }
#pragma omp parallel for schedule(static) if (PAR((size_t)B * H * T * T * d))
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, hd = bh % H;
            float *p = a->p + (size_t)bh * T * T;
            uint64_t key = bt_dropout_key(seed, bb->step, bb->sample0 + (uint64_t)b, l, BT_DROP_ATTN_PROBS);
            for (int i = 0; i < T; i++) {
                const float *ai = A + ((size_t)b * T + i) * h + hd * d;
                float *pr = p + (size_t)i * T, mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    pr[j] = dot(ai, K + ((size_t)b * T + j) * h + hd * d, d) * att_scale;
                    if (pr[j] > mx) mx = pr[j];
                }
                float s = 0.0f;
                for (int j = 0; j < T; j++) { pr[j] = expf(pr[j] - mx); s += pr[j]; }
                float inv = 1.0f / s;
                for (int j = 0; j < T; j++) pr[j] *= inv;
                float *o = a->ctx + ((size_t)b * T + i) * h + hd * d;
                for (int k = 0; k < d; k++) o[k] = 0.0f;
                for (int j = 0; j < T; j++) {
                    float w = pr[j];
                    if (pa > 0.0f) w *= keep(key, ((uint64_t)hd * T + i) * T + j, pa);
                    if (w != 0.0f) axpy(o, w, a->v + ((size_t)b * T + j) * h + hd * d, d);
                }
            }
        }
        /* a = LN1(x + dropout(ctx Wo^T + bo)) */
        linear_fwd(m->dt, a->ctx, PARAM(BT_T_AO_W, l), PARAM(BT_T_AO_B, l), BT, h, h);
        dropout_apply(m->dt, bb, T, h, l, BT_DROP_ATTN_OUT, ph, seed);
        for (size_t i = 0; i < (size_t)BT * h; i++) m->dt[i] += x[i];
        layernorm_fwd(a->ln1_out, a->ln1_xhat, a->ln1_rstd, m->dt, PARAM(BT_T_ALN_W, l), PARAM(BT_T_ALN_B, l), BT, h, c->ln_eps);
        /* y = LN2(a + dropout(gelu(a W1^T + b1) W2^T + b2)) */
        linear_fwd(a->f1, a->ln1_out, PARAM(BT_T_FFN1_W, l), PARAM(BT_T_FFN1_B, l), BT, f, h);
        for (size_t i = 0; i < (size_t)BT * f; i++) a->g[i] = gelu(a->f1[i]);
        linear_fwd(m->dt, a->g, PARAM(BT_T_FFN2_W, l), PARAM(BT_T_FFN2_B, l), BT, h, f);
        dropout_apply(m->dt, bb, T, h, l, BT_DROP_FFN_OUT, ph, seed);
        for (size_t i = 0; i < (size_t)BT * h; i++) m->dt[i] += a->ln1_out[i];
        layernorm_fwd(y, a->ln2_xhat, a->ln2_rstd, m->dt, PARAM(BT_T_OLN_W, l), PARAM(BT_T_OLN_B, l), BT, h, c->ln_eps);
    }

    /* MLM head at the labelled positions */
    const float *xL = m->xs + (size_t)c->layers * BT * h;
    int M = 0;
    for (int i = 0; i < BT; i++)
        if (bb->labels[i] != BT_IGNORE) {
            m->pos[M] = i;
            memcpy(m->hx + (size_t)M * h, xL + (size_t)i * h, (size_t)h * sizeof(float));
            M++;
        }
    if (n_labels) *n_labels = M;
    if (M == 0) return 0.0;   /* nothing to predict: no loss, no gradient */
    if ((size_t)M > m->logits_rows) {
        float *nl = realloc(m->logits, (size_t)M * V * sizeof(float));
        if (!nl) { if (n_labels) *n_labels = -1; return NAN; }
        m->logits = nl; m->logits_rows = (size_t)M;
    }
    const float *wemb = PARAM(BT_T_WORD_EMB, 0);
    double loss = 0.0;
    {
        linear_fwd(m->hd, m->hx, PARAM(BT_T_HEAD_W, 0), PARAM(BT_T_HEAD_B, 0), M, h, h);
        for (size_t i = 0; i < (size_t)M * h; i++) m->hg[i] = gelu(m->hd[i]);
        layernorm_fwd(m->hn, m->hn_xhat, m->hn_rstd, m->hg, PARAM(BT_T_HEAD_LN_W, 0), PARAM(BT_T_HEAD_LN_B, 0), M, h, c->ln_eps);
        linear_fwd(m->logits, m->hn, wemb, PARAM(BT_T_DEC_B, 0), M, V, h);
        if (logits_out) memcpy(logits_out, m->logits, (size_t)M * V * sizeof(float));
        /* cross-entropy; the logits become their gradient scale * (softmax - onehot) */
        double *lrow = malloc((size_t)M * sizeof *lrow);
        if (!lrow) { if (n_labels) *n_labels = -1; return NAN; }
#pragma omp parallel for schedule(static) if (PAR((size_t)M * V * 4))
        for (int r = 0; r < M; r++) {
            float *z = m->logits + (size_t)r * V, mx = -INFINITY;
            for (int v = 0; v < V; v++) if (z[v] > mx) mx = z[v];
            double s = 0.0;
            for (int v = 0; v < V; v++) s += exp((double)(z[v] - mx));
            int lab = bb->labels[m->pos[r]];
            lrow[r] = log(s) + mx - z[lab];
            if (G) {
                float inv = (float)(1.0 / s);
                for (int v = 0; v < V; v++) z[v] = expf(z[v] - mx) * inv * scale;
                z[lab] -= scale;
            }
        }
        for (int r = 0; r < M; r++) loss += lrow[r];
        free(lrow);
    }
    if (!G) return loss;

    /* ---------------- backward */
    float *dx = m->dx;   /* gradient w.r.t. the current layer's output */
    memset(dx, 0, (size_t)BT * h * sizeof(float));
    {
        linear_bwd_w(GRAD(BT_T_WORD_EMB, 0), GRAD(BT_T_DEC_B, 0), m->logits, m->hn, M, V, h);
        memset(m->dh, 0, (size_t)M * h * sizeof(float));
        linear_bwd_in(m->dh, m->logits, wemb, M, V, h);
        layernorm_bwd(m->dh, GRAD(BT_T_HEAD_LN_W, 0), GRAD(BT_T_HEAD_LN_B, 0), m->dh, m->hn_xhat, m->hn_rstd,
                      PARAM(BT_T_HEAD_LN_W, 0), M, h);
        for (size_t i = 0; i < (size_t)M * h; i++) m->dh[i] *= gelu_grad(m->hd[i]);
        linear_bwd_w(GRAD(BT_T_HEAD_W, 0), GRAD(BT_T_HEAD_B, 0), m->dh, m->hx, M, h, h);
        memset(m->dt, 0, (size_t)M * h * sizeof(float));
        linear_bwd_in(m->dt, m->dh, PARAM(BT_T_HEAD_W, 0), M, h, h);
        for (int r = 0; r < M; r++) memcpy(dx + (size_t)m->pos[r] * h, m->dt + (size_t)r * h, (size_t)h * sizeof(float));
    }

    for (int l = c->layers - 1; l >= 0; l--) {
        struct act *a = &m->act[l];
        const float *x = m->xs + (size_t)l * BT * h;
        /* LN2: dx -> d(residual 2), in place */
        layernorm_bwd(dx, GRAD(BT_T_OLN_W, l), GRAD(BT_T_OLN_B, l), dx, a->ln2_xhat, a->ln2_rstd, PARAM(BT_T_OLN_W, l), BT, h);
        memcpy(m->da, dx, (size_t)BT * h * sizeof(float));            /* residual into a */
        dropout_apply(dx, bb, T, h, l, BT_DROP_FFN_OUT, ph, seed);    /* d(FFN output) */
        linear_bwd_w(GRAD(BT_T_FFN2_W, l), GRAD(BT_T_FFN2_B, l), dx, a->g, BT, h, f);
        memset(m->df, 0, (size_t)BT * f * sizeof(float));
        linear_bwd_in(m->df, dx, PARAM(BT_T_FFN2_W, l), BT, h, f);
        for (size_t i = 0; i < (size_t)BT * f; i++) m->df[i] *= gelu_grad(a->f1[i]);
        linear_bwd_w(GRAD(BT_T_FFN1_W, l), GRAD(BT_T_FFN1_B, l), m->df, a->ln1_out, BT, f, h);
        linear_bwd_in(m->da, m->df, PARAM(BT_T_FFN1_W, l), BT, f, h);
        /* LN1: da -> d(residual 1) = d x (residual) and d(attention output) */
        layernorm_bwd(m->da, GRAD(BT_T_ALN_W, l), GRAD(BT_T_ALN_B, l), m->da, a->ln1_xhat, a->ln1_rstd, PARAM(BT_T_ALN_W, l), BT, h);
        memcpy(dx, m->da, (size_t)BT * h * sizeof(float));            /* residual into x */
        dropout_apply(m->da, bb, T, h, l, BT_DROP_ATTN_OUT, ph, seed);
        linear_bwd_w(GRAD(BT_T_AO_W, l), GRAD(BT_T_AO_B, l), m->da, a->ctx, BT, h, h);
        memset(m->dctx, 0, (size_t)BT * h * sizeof(float));
        linear_bwd_in(m->dctx, m->da, PARAM(BT_T_AO_W, l), BT, h, h);

        /* attention core */
        const float *K = has_key ? a->k : a->q;
        const float *A = has_pair ? a->a : a->q;
        memset(m->dq, 0, (size_t)BT * h * sizeof(float));
        memset(m->dk, 0, (size_t)BT * h * sizeof(float));
        memset(m->dv, 0, (size_t)BT * h * sizeof(float));
        memset(m->dA, 0, (size_t)BT * h * sizeof(float));
#pragma omp parallel for schedule(static) if (PAR((size_t)B * H * T * T * d * 2))
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, hd = bh % H;
            const float *p = a->p + (size_t)bh * T * T;
            float *dp = m->dp + (size_t)bh * T * T;
            uint64_t key = bt_dropout_key(seed, bb->step, bb->sample0 + (uint64_t)b, l, BT_DROP_ATTN_PROBS);
            size_t base = (size_t)b * T * h + (size_t)hd * d;
            /* dPd = dctx V^T; dV = Pd^T dctx; dP = dropout'(dPd) */
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    float w = pa > 0.0f ? keep(key, ((uint64_t)hd * T + i) * T + j, pa) : 1.0f;
                    float gpd = dot(m->dctx + base + (size_t)i * h, a->v + base + (size_t)j * h, d);
                    dp[(size_t)i * T + j] = gpd * w;
                    float pd = p[(size_t)i * T + j] * w;
                    if (pd != 0.0f) axpy(m->dv + base + (size_t)j * h, pd, m->dctx + base + (size_t)i * h, d);
                }
            /* softmax backward, then the 1/sqrt(d) scale: dscores in dp */
            for (int i = 0; i < T; i++) {
                const float *pr = p + (size_t)i * T;
                float *g = dp + (size_t)i * T, s = 0.0f;
                for (int j = 0; j < T; j++) s += pr[j] * g[j];
                for (int j = 0; j < T; j++) g[j] = pr[j] * (g[j] - s) * att_scale;
            }
            /* dA = dscores K;  dK = dscores^T A */
            float *dK = has_key ? m->dk : m->dq;
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    float g = dp[(size_t)i * T + j];
                    if (g == 0.0f) continue;
                    axpy(m->dA + base + (size_t)i * h, g, K + base + (size_t)j * h, d);
                    axpy(dK + base + (size_t)j * h, g, A + base + (size_t)i * h, d);
                }
        }
        if (has_pair) {
            /* A = Q S: dQ += dA S^T; dS_h = sum over samples and tokens of Q^T dA */
            const float *S = PARAM(BT_T_PAIR, l);
#pragma omp parallel for schedule(static) if (PAR((size_t)BT * h * d))
            for (int t = 0; t < BT; t++)
                for (int hd = 0; hd < H; hd++) {
                    const float *g = m->dA + (size_t)t * h + hd * d, *Sh = S + (size_t)hd * d * d;
                    float *o = m->dq + (size_t)t * h + hd * d;
                    for (int i = 0; i < d; i++) o[i] += dot(g, Sh + (size_t)i * d, d);
                }
            float *dS = GRAD(BT_T_PAIR, l);
#pragma omp parallel for schedule(static) if (PAR((size_t)BT * h * d))
            for (int hi = 0; hi < H * d; hi++) {
                int hd = hi / d, i = hi % d;
                float *o = dS + (size_t)hd * d * d + (size_t)i * d;
                for (int t = 0; t < BT; t++) {
                    float q = a->q[(size_t)t * h + hd * d + i];
                    if (q != 0.0f) axpy(o, q, m->dA + (size_t)t * h + hd * d, d);
                }
            }
        } else {
            for (size_t i = 0; i < (size_t)BT * h; i++) m->dq[i] += m->dA[i];
        }
        /* projections: weights, and the gradient into x (the residual is in dx) */
        linear_bwd_w(GRAD(BT_T_Q_W, l), GRAD(BT_T_Q_B, l), m->dq, x, BT, h, h);
        linear_bwd_in(dx, m->dq, PARAM(BT_T_Q_W, l), BT, h, h);
        if (has_key) {
            linear_bwd_w(GRAD(BT_T_K_W, l), GRAD(BT_T_K_B, l), m->dk, x, BT, h, h);
            linear_bwd_in(dx, m->dk, PARAM(BT_T_K_W, l), BT, h, h);
        }
        linear_bwd_w(GRAD(BT_T_V_W, l), GRAD(BT_T_V_B, l), m->dv, x, BT, h, h);
        linear_bwd_in(dx, m->dv, PARAM(BT_T_V_W, l), BT, h, h);
    }

    /* embeddings */
    dropout_apply(dx, bb, T, h, -1, BT_DROP_EMB, ph, seed);
    layernorm_bwd(dx, GRAD(BT_T_EMB_LN_W, 0), GRAD(BT_T_EMB_LN_B, 0), dx, m->emb_xhat, m->emb_rstd, PARAM(BT_T_EMB_LN_W, 0), BT, h);
    float *gw = GRAD(BT_T_WORD_EMB, 0), *gp = GRAD(BT_T_POS_EMB, 0), *gt = GRAD(BT_T_TYPE_EMB, 0);
    for (int i = 0; i < BT; i++) {
        const float *g = dx + (size_t)i * h;
        if (bb->inputs[i] != c->pad_id) axpy(gw + (size_t)bb->inputs[i] * h, 1.0f, g, h);
    }
#pragma omp parallel for schedule(static) if (PAR((size_t)BT * h))
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) axpy(gp + (size_t)t * h, 1.0f, dx + ((size_t)b * T + t) * h, h);
    for (int i = 0; i < BT; i++) axpy(gt, 1.0f, dx + (size_t)i * h, h);
    return loss;
}
