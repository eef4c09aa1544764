/* masked_rows.cu - the last layer at the masked rows only.
 *
 * The MLM head reads the last layer's output at the n masked positions
 * only, and everything after that layer's attention works row by row, so
 * from its output projection on the last layer runs on those rows
 * (sparse_last_fwd/bwd, with model.cu's post_attn); with the flash kernels
 * its attention too runs for the masked queries only (gathered: per
 * sample, the masked positions become query rows b*tq + j, padded to tq, a
 * multiple of 128; every row stays a key and a value).  Same loss and
 * gradients as the dense layer (cuda_model_test); btc_opts.dense_last
 * turns it off. */
#include "trainer/cuda/model.cuh"

/* The most masked positions of a sample of the micro-batch, rounded up to 128 (at most T). */
void gathered_rows_per_sample(btc_model *m, int B) {
    int mx = 0;
    for (int i = 0; i < B; i++) if (m->h_off[i + 1] - m->h_off[i] > mx) mx = m->h_off[i + 1] - m->h_off[i];
    m->tq = (mx + 127) / 128 * 128;
    if (m->tq < 128) m->tq = 128;
    if (m->tq > m->T) m->tq = m->T;
}

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
void gathered_maps(btc_model *m, const int32_t *pos, int B) {
    CUDA_CHECK(cudaMemsetAsync(m->gath.inv, 0xff, (size_t)B * m->T * 4, g_stream));
    gq_maps_kernel<<<B, 128, 0, g_stream>>>(m->gath.map, m->gath.rows, m->gath.inv, pos, m->d_off, m->T, m->tq);
    LAUNCH_CHECK("gq_maps_kernel");
}

/* The buffers of post_attn at the masked rows (the head's: its input rows
 * head.in are the output; head.scratch1 the incoming gradient, then dO's;
 * head.scratch2 the gathered x, then dx's). */
static PostAttn post_masked(btc_model *m) {
    const LastRowsBuf *l = &m->last;
    const RowActs *r = &l->rows;
    PostAttn p = {l->o, m->head.scratch2, r->r1, r->h1, r->u, r->g, r->r2, m->head.in, r->mean1, r->rstd1, r->mean2,
                  r->rstd2, l->dy, l->dres, l->du, m->head.scratch1, m->head.scratch2, m->head.scratch1};
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
 * output and the layer input x to the head's input rows m->head.in. */
template <typename T>
void sparse_last_fwd(btc_model *m, LayerBuf *b, const T *x, const int32_t *pos, int B, int n, int np_,
                            DropCtx hd, int l) {
    const int C = m->C;
    gemm_set_autotune(0);   /* shapes follow the masked count, as the head's */
    if (m->gathered)   /* the attention ran for these queries only: rows b*tq + j -> masked index */
        scatter_map<T>((T *)m->last.o, C, (const T *)m->gath.o, C, m->gath.map, B * m->tq, C, 0);
    else
        gather_rows<T>((T *)m->last.o, (const T *)b->o, pos, n, C);
    pad_zero<T>(m->last.o, n, np_, C, m->esz);
    gather_rows<T>((T *)m->head.scratch2, x, pos, n, C);   /* the residual's rows (scratch until the backward) */
    post_attn_fwd<T>(m, post_masked(m), n, np_, pos, hd, l);
    gemm_set_autotune(1);
}
/* Backward, from the gradient of the head's input rows (m->head.scratch1, zero padding
 * rows) to the gradients of the attention output (m->dO, or m->gath.dout for the
 * gathered queries) and of the layer input (m->cur, the residual's share;
 * the q/k/v products add theirs), zero outside the masked rows. */
template <typename T>
void sparse_last_bwd(btc_model *m, int M, const int32_t *pos, int n, int np_, DropCtx hd, int l) {
    const int C = m->C;
    gemm_set_autotune(0);
    post_attn_bwd<T>(m, post_masked(m), n, np_, pos, hd, l);
    gemm_set_autotune(1);
    if (m->gathered)   /* the gradient of the gathered queries' outputs (padding rows zero) */
        gather_map<T>((T *)m->gath.dout, C, (const T *)m->head.scratch1, C, m->gath.map, NULL, M / m->T * m->tq, C);
    else {
        CUDA_CHECK(cudaMemsetAsync(m->dO, 0, (size_t)M * C * m->esz, g_stream));
        scatter_rows<T>((T *)m->dO, (const T *)m->head.scratch1, pos, n, C);
    }
    CUDA_CHECK(cudaMemsetAsync(m->cur, 0, (size_t)M * C * m->esz, g_stream));
    scatter_rows<T>((T *)m->cur, (const T *)m->head.scratch2, pos, n, C);
}

template void sparse_last_fwd<float>(btc_model *, LayerBuf *, const float *, const int32_t *, int, int, int, DropCtx, int);
template void sparse_last_fwd<bf16>(btc_model *, LayerBuf *, const bf16 *, const int32_t *, int, int, int, DropCtx, int);
template void sparse_last_bwd<float>(btc_model *, int, const int32_t *, int, int, DropCtx, int);
template void sparse_last_bwd<bf16>(btc_model *, int, const int32_t *, int, int, DropCtx, int);
