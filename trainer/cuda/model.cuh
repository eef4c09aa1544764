/* model.cuh - the GPU model's insides, shared by model.cu (buffers, the
 * pass, AdamW) and masked_rows.cu (the last layer at the masked rows only):
 * the buffers of btc_model, the accessors of its parameter tensors, the
 * profiling hook, and the row-wise part of a layer (post_attn) that both
 * run.  Not an interface: gpu.h is. */
#ifndef SYMBERT_CUDA_MODEL_CUH
#define SYMBERT_CUDA_MODEL_CUH
#include "trainer/cuda/gpu.h"
#include "trainer/cuda/common.cuh"
#include "trainer/cuda/matmul.cuh"
#include "trainer/cuda/elementwise.cuh"
#include "trainer/cuda/attention.cuh"
#include "trainer/cuda/adamw.cuh"

/* A layer's row-wise activations after its attention, saved for the
 * backward pass (model.cu's top): r1 = x + dropout(attention output
 * projection), h1 = LN1(r1), u = h1 W1^T, g = gelu(u + b1), r2, and the
 * two LayerNorms' statistics. */
struct RowActs {
    void *r1, *h1, *u, *g, *r2;
    float *mean1, *rstd1, *mean2, *rstd2;
};
/* Saved per layer: the packed q/k/v, Q S_h (pairwise), the attention
 * output, its log-sum-exp and dropout bits (flash) or probabilities
 * (reference path), the rows after it and the layer output h2. */
struct LayerBuf {
    void *qkv, *qs, *o, *h2, *probs;
    uint64_t *bits;
    float *lse;
    RowActs rows;
};
/* The MLM head at the masked rows (padded to HEAD_ROUND; `cap` rows
 * allocated): its input rows, the dense's output before and after GELU, the
 * LayerNorm output and statistics, the logits [rows, Vp] (then their
 * gradient), two rows-sized gradient scratch buffers, the per-row losses. */
struct HeadBuf {
    void *in, *pre_gelu, *gelu, *ln_out, *logits, *scratch1, *scratch2;
    float *mean, *rstd, *loss;
};
/* The last layer after its attention at those rows (sparse_last): its
 * attention output there, its row-wise activations (its output is the
 * head's input rows), gradient scratch. */
struct LastRowsBuf {
    void *o;
    RowActs rows;
    void *dres, *dy, *du;
};
/* The last layer's attention for the masked queries only (gathered): the
 * gathered queries, their outputs and gradients ([maxB*T, C] at most), and
 * the maps gathered row -> masked index (-1: padding), gathered row ->
 * position in its sample, token row -> gathered row. */
struct GatherBuf {
    void *q, *o, *dout, *dq;
    int32_t *map, *rows, *inv;
};

#define NSLOTS 4

struct btc_model {
    const bt_layout *L;
    bt_config c;
    int maxB, T, prec, flash, C, F, NH, d, V, Vp, nsm, nproj;
    int kernels;                    /* flash: FLASH_MMA or FLASH_WGMMA */
    size_t np, esz;
    size_t *ioff;                   /* internal offset of each tensor of L */
    float *hbuf;                    /* host scratch for layout conversion (np floats) */
    /* parameters, gradients and AdamW state: np floats each */
    float *p, *grad, *m1, *m2;
    void *pc;                       /* weights in T (bf16 copy, or p itself in fp32) */
    AdamChunk *chunks;
    int nchunks;
    /* one allocation (act_block) for everything below that a micro-batch of maxB x T needs */
    void *act_block;
    int32_t *d_in;                  /* per micro-batch: inputs [M], pos [M], lab [M] */
    uint16_t *d_ids;                /* raw ids of a micro-batch masked on the device [M] */
    int32_t *d_off;                 /* where each sample's labelled positions start [maxB + 1] */
    int *d_maskerr;                 /* a sample whose device count differs from the host's (+1) */
    void *x0, *r0;                  /* embedding output, embedding sum (before LayerNorm) */
    float *mean0, *rstd0;
    LayerBuf *lay;                  /* [layers] */
    GatherBuf gath;
    /* backward scratch: the gradient flowing down the layers (cur), of a residual sum (dres), of a
     * sublayer output (dy), of the packed q/k/v and of Q S_h, of the attention output, of the FFN */
    void *cur, *dres, *dy, *dqkv, *dqs, *dO, *du;
    void *scr1, *scr2;              /* reference attention: [B, heads, T, T] scores */
    float *dqacc, *dsum;            /* flash backward: fp32 dK scratch, row sums D */
    float *embtmp;                  /* embedding backward: per-position sums [T, C] */
    float *pbias;                   /* pairwise: column sums of d(Q S_h) [C], zeroed by pair_bias_grad */
    double *lossacc;
    float *normclip, *partials;     /* gradient norm and clip factor; per-chunk partial sums */
    /* one allocation (head_block) for the masked rows, regrown when a micro-batch masks more */
    void *head_block;
    int cap;                        /* head rows allocated */
    HeadBuf head;
    LastRowsBuf last;
    int sparse_last;                /* the last layer after its attention at the masked rows only */
    int gathered;                   /* flash + sparse_last: its attention for the masked queries only */
    int tq;                         /* query rows per sample there (a multiple of 128, <= T) */
    int32_t *h_off;                 /* host copy of the per-sample offsets of the masked positions [maxB + 1] */
    int32_t *h_slot[NSLOTS];        /* pinned staging for d_in (or for raw ids and offsets) */
    cudaEvent_t ev_slot[NSLOTS];
    int slot;
    int *h_maskerr;
    double *h_loss;
    float *h_norm;
    int last_n;
    cudaStream_t side;              /* dropout bits of the attention, ahead of the main stream; zeroing the gradients */
    cudaEvent_t ev_start, *ev_bits, ev_zero;
    int zero_pending;               /* btc_zero_grads asked; done on the side stream during the next forward */
};

#define HEAD_ROUND 128   /* head rows are padded to a multiple of this: few distinct GEMM shapes */
static inline int head_pad(int n) { return (n + HEAD_ROUND - 1) / HEAD_ROUND * HEAD_ROUND; }

/* Parameter tensor k of layer l (l ignored for the embeddings and the head):
 * W the weights in the activation type, PF the fp32 master copy, GR its
 * gradient (internal layout, model.cu). */
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

/* Profiling (btc_profile_begin/end): an event named `name` after a stage. */
void prof(const char *name);

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
void post_attn_fwd(btc_model *m, const PostAttn &p, int rows, int prow, const int32_t *rowmap, DropCtx hd, int l);
template <typename T>
void post_attn_bwd(btc_model *m, const PostAttn &p, int rows, int prow, const int32_t *rowmap, DropCtx hd, int l);

/* masked_rows.cu: the last layer after its attention at the masked rows
 * only (sparse_last), its attention for the masked queries only
 * (gathered).  gathered_rows_per_sample: m->tq for a micro-batch of B
 * samples (the host's offsets h_off); gathered_maps: the maps of GatherBuf
 * from the masked positions pos and the device offsets d_off. */
void gathered_rows_per_sample(btc_model *m, int B);
void gathered_maps(btc_model *m, const int32_t *pos, int B);
template <typename T>
void sparse_last_fwd(btc_model *m, LayerBuf *b, const T *x, const int32_t *pos, int B, int n, int np_, DropCtx hd, int l);
template <typename T>
void sparse_last_bwd(btc_model *m, int M, const int32_t *pos, int n, int np_, DropCtx hd, int l);
#endif
