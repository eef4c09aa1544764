/* model.h - the BERT masked-language model of the paper, as data: its
 * configuration, the table of its parameters in one flat fp32 buffer, their
 * initialisation, and the masking of the MLM objective.
 *
 * Both trainers (the plain-C one in this folder and the CUDA one in
 * trainer/cuda/) share everything here, so that a checkpoint written by one
 * is read by the other and a tensor means the same thing in both.
 *
 * The model (Courtois et al. 2024, plpi's BertForMaskedLM):
 *   embeddings  x = LN(word[id] + pos[t] + type[0]); dropout
 *   each layer  Q = x Wq^T + bq;  K = Q (symmetric, pairwise) or x Wk^T + bk
 *               scores_h = Q_h [S_h] K_h^T / sqrt(d)   (S_h only for pairwise)
 *               P = dropout(softmax(scores));  ctx = P V  (V = x Wv^T + bv)
 *               a = LN(x + dropout(ctx Wo^T + bo))                (post-LN)
 *               x = LN(a + dropout(gelu(a W1^T + b1) W2^T + b2))  (GELU, erf form)
 *   MLM head    h = LN(gelu(x Wt^T + bt));  logits = h word^T + bias (tied decoder)
 *   loss        cross-entropy over the masked positions only.
 *
 * Parameters: one flat float buffer; the table gives each tensor's Hugging
 * Face name, shape, offset (in floats) and whether weight decay applies.
 * Linear weights are [out, in] as in PyTorch.  The order is the order of
 * HF's state_dict (embeddings, then layer by layer, then the head), with
 * "pairwise_factors" between query and value as plpi declares it.  The
 * decoder weight is the word embedding matrix (tied), not stored twice.
 *
 * Random numbers: everything random (initial weights, masks, dropout, the
 * sample order) is a pure function of a seed and a few counters (bt_rand*),
 * so that results depend neither on thread count nor on how a batch is split
 * into micro-batches nor on where a run was interrupted and resumed. */
#ifndef SYMBERT_TRAINER_MODEL_H
#define SYMBERT_TRAINER_MODEL_H
#include <stddef.h>
#include <stdint.h>

/* The random streams and the mask draws below are compiled for the CPU and,
 * by nvcc, for the GPU too (trainer/cuda/): one definition for both, always
 * inlined in kernels (measured: plain inline cost BERT-base 0.4%). */
#ifdef __CUDACC__
#define BT_INLINE static __host__ __device__ __forceinline__
#else
#define BT_INLINE static inline
#endif

/* ------------------------------------------------------------ config */

typedef enum { BT_ATTN_ORIGINAL = 0, BT_ATTN_SYMMETRIC = 1, BT_ATTN_PAIRWISE = 2 } bt_attn;

typedef struct bt_config {
    int vocab_size;        /* 30522 */
    int max_pos;           /* 512 position embeddings */
    int type_vocab;        /* 2 token types (only type 0 is used) */
    int hidden;            /* hidden size h */
    int layers;
    int heads;             /* head size d = hidden / heads */
    int ffn;               /* intermediate size */
    float ln_eps;          /* 1e-12 */
    float hidden_dropout;  /* 0.1: embeddings, attention output, FFN output */
    float attn_dropout;    /* 0.1: attention probabilities */
    float init_std;        /* 0.02 */
    int pad_id;            /* 0: its word-embedding row starts at zero and gets no gradient from the input side */
    bt_attn attn;
} bt_config;

#define BT_MAX_LAYERS 64

/* "tiny" (2 layers, 2 heads, hidden 128, FFN 512), "small" (4, 8, 512,
 * 2048), "base" (12, 12, 768, 3072); all with the common settings of the
 * paper.  Returns 0, or -1 for an unknown name.  cfg->attn is ORIGINAL. */
int bt_config_preset(const char *name, bt_config *cfg);
/* "original" (or "vanilla"), "symmetric", "pairwise" -> 0, else -1. */
int bt_attn_parse(const char *s, bt_attn *out);
/* plpi's plpi_affinity_function value: "vanilla", "symmetric", "pairwise". */
const char *bt_attn_plpi_name(bt_attn a);
/* Checks that a config is usable (sizes positive, hidden % heads == 0,
 * layers <= BT_MAX_LAYERS, vocab_size <= 65536 as token ids are uint16,
 * dropout in [0,1)).  0, or -1 with a message. */
int bt_config_check(const bt_config *cfg, char *err, size_t errlen);
/* Reads a Hugging Face BertConfig JSON (config.json): vocab_size,
 * hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
 * max_position_embeddings, type_vocab_size, layer_norm_eps,
 * hidden_dropout_prob, attention_probs_dropout_prob, initializer_range,
 * pad_token_id, plpi_affinity_function.  Missing keys take BertConfig's
 * defaults (bert-base); hidden_act must be "gelu" if present.  0, or -1 with
 * "file: what" in err. */
int bt_config_load_json(const char *path, bt_config *cfg, char *err, size_t errlen);
/* Writes config.json text that both transformers (BertForMaskedLM) and plpi
 * (model_type "plpi/bert", plpi_affinity_function) accept.  Returns the
 * length written (snprintf semantics: >= cap means truncated). */
int bt_config_to_json(const bt_config *cfg, char *buf, size_t cap);

/* The shortest decimal text that reads back as the same float ("0.1", not
 * "0.100000001"), for JSON.  buf: 32 bytes. */
const char *bt_float_str(float x, char buf[32]);

/* ------------------------------------------------------------ parameters */

/* What a tensor is; per-layer kinds repeat for each layer. */
typedef enum {
    BT_T_WORD_EMB = 0,   /* [vocab, h]  bert.embeddings.word_embeddings.weight (also the decoder) */
    BT_T_POS_EMB,        /* [max_pos, h] */
    BT_T_TYPE_EMB,       /* [type_vocab, h] */
    BT_T_EMB_LN_W,       /* [h] */
    BT_T_EMB_LN_B,       /* [h] */
    /* per layer */
    BT_T_Q_W,            /* [h, h]  attention.self.query.weight */
    BT_T_Q_B,            /* [h] */
    BT_T_K_W,            /* [h, h]  attention.self.key.weight: ORIGINAL only */
    BT_T_K_B,            /* [h]     ORIGINAL only */
    BT_T_PAIR,           /* [heads, d, d] attention.self.pairwise_factors: PAIRWISE only */
    BT_T_V_W,            /* [h, h] */
    BT_T_V_B,            /* [h] */
    BT_T_AO_W,           /* [h, h]  attention.output.dense.weight */
    BT_T_AO_B,           /* [h] */
    BT_T_ALN_W,          /* [h]     attention.output.LayerNorm.weight */
    BT_T_ALN_B,          /* [h] */
    BT_T_FFN1_W,         /* [ffn, h] intermediate.dense.weight */
    BT_T_FFN1_B,         /* [ffn] */
    BT_T_FFN2_W,         /* [h, ffn] output.dense.weight */
    BT_T_FFN2_B,         /* [h] */
    BT_T_OLN_W,          /* [h]     output.LayerNorm.weight */
    BT_T_OLN_B,          /* [h] */
    /* head */
    BT_T_HEAD_W,         /* [h, h]  cls.predictions.transform.dense.weight */
    BT_T_HEAD_B,         /* [h] */
    BT_T_HEAD_LN_W,      /* [h]     cls.predictions.transform.LayerNorm.weight */
    BT_T_HEAD_LN_B,      /* [h] */
    BT_T_DEC_B,          /* [vocab] cls.predictions.bias */
    BT_T_KINDS
} bt_kind;

/* How a tensor starts: normal(0, init_std), zeros, ones, normal(0, 1). */
typedef enum { BT_INIT_NORMAL = 0, BT_INIT_ZERO, BT_INIT_ONE, BT_INIT_STDNORMAL } bt_init;

typedef struct bt_tensor {
    char name[96];       /* Hugging Face name, e.g. "bert.encoder.layer.0.attention.self.query.weight" */
    bt_kind kind;
    int layer;           /* 0..layers-1, or -1 for embeddings and head */
    int ndim;
    int shape[3];
    size_t offset;       /* in floats, into the flat buffer */
    size_t numel;
    int decay;           /* 1: AdamW weight decay applies (not biases, not LayerNorm) */
    bt_init init;
} bt_tensor;

typedef struct bt_layout {
    bt_config cfg;
    int n;                              /* number of tensors */
    bt_tensor *t;                       /* n entries, in buffer order */
    size_t total;                       /* floats in the buffer = bt_param_count */
    int index[BT_T_KINDS][BT_MAX_LAYERS]; /* tensor number, -1 when absent; embeddings/head at [kind][0] */
} bt_layout;

/* Builds the table for a config (checked with bt_config_check).  0, or -1
 * with a message.  bt_layout_free releases it. */
int bt_layout_init(bt_layout *L, const bt_config *cfg, char *err, size_t errlen);
void bt_layout_free(bt_layout *L);
/* The tensor of a kind (layer ignored for embeddings and head), or NULL
 * when this attention variant has none. */
const bt_tensor *bt_tensor_of(const bt_layout *L, bt_kind kind, int layer);
/* Offset in floats of that tensor; (size_t)-1 when absent. */
size_t bt_off(const bt_layout *L, bt_kind kind, int layer);
/* Tensor by Hugging Face name, or NULL. */
const bt_tensor *bt_tensor_find(const bt_layout *L, const char *name);
/* Number of parameters of BertForMaskedLM with a tied decoder (Table 2 of
 * the paper: base pairwise = 103,017,018).  0 for an invalid config. */
size_t bt_param_count(const bt_config *cfg);
/* Fills params (L->total floats) with the initial weights: normal(0, std)
 * for linear and embedding weights (the pad row of the word embeddings
 * zero, as HF does), zero biases, LayerNorm weight 1, pairwise factors
 * normal(0, 1).  Element i of tensor k is a function of (seed, k, i) alone. */
void bt_params_init(const bt_layout *L, float *params, uint64_t seed);

/* ------------------------------------------------------------ random numbers */

/* A 64-bit mixing function (splitmix64's finaliser): the core of every
 * counter-based stream here. */
BT_INLINE uint64_t bt_mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
/* A stream key from a seed, a domain tag and three counters. */
BT_INLINE uint64_t bt_key(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t k = bt_mix64(seed + 0x9e3779b97f4a7c15ULL * (tag + 1));
    k = bt_mix64(k ^ (a + 0x632be59bd9b4e019ULL));
    k = bt_mix64(k ^ (b + 0x8cb92ba72f3d8dd7ULL));
    k = bt_mix64(k ^ (c + 0xd1b54a32d192ed03ULL));
    return k;
}
/* The i-th 32-bit number of a stream. */
BT_INLINE uint32_t bt_rand32(uint64_t key, uint64_t i) {
    return (uint32_t)(bt_mix64(key + 0x9e3779b97f4a7c15ULL * (i + 1)) >> 32);
}
/* Uniform in [0, 1) with 24 bits, exact in float. */
BT_INLINE float bt_uniform(uint64_t key, uint64_t i) {
    return (float)(bt_rand32(key, i) >> 8) * (1.0f / 16777216.0f);
}
/* Domain tags of the streams. */
enum { BT_RNG_INIT = 1, BT_RNG_MASK = 2, BT_RNG_DROPOUT = 3, BT_RNG_PERM = 4 };
/* Dropout sites: the embedding dropout is (layer -1, BT_DROP_EMB); each
 * encoder layer l has the other three. */
enum { BT_DROP_EMB = 0, BT_DROP_ATTN_PROBS = 1, BT_DROP_ATTN_OUT = 2, BT_DROP_FFN_OUT = 3 };
/* Key of the dropout stream for (seed, step, sample in the batch, layer, site). */
BT_INLINE uint64_t bt_dropout_key(uint64_t seed, uint64_t step, uint64_t sample, int layer, int site) {
    return bt_key(seed, BT_RNG_DROPOUT, step, sample, (uint64_t)(layer + 1) * 8 + (uint64_t)site);
}
/* Dropout draws 16 bits per element, four elements from one 64-bit mix:
 * element e of a stream (its tensor flattened, per sample) reads bits
 * 16 (e % 4) .. 16 (e % 4) + 15 of word e / 4, and is kept iff they are
 * >= bt_dropout_threshold(p) = ceil(p 2^16), i.e. with probability
 * 1 - p rounded down to a multiple of 2^-16 (p 0.1: 0.899994), and then
 * scaled by 1/(1-p).  One mix per four elements instead of one per element:
 * the hashing was most of the cost of dropout on the GPU (FlashAttention
 * draws 8-bit thresholds from Philox for the same reason). */
BT_INLINE uint64_t bt_dropout_word(uint64_t key, uint64_t w) {
    return bt_mix64(key + 0x9e3779b97f4a7c15ULL * (w + 1));
}
BT_INLINE uint32_t bt_dropout_threshold(float p) {
    double x = (double)p * 65536.0;
    uint32_t t = (uint32_t)x;
    return (double)t < x ? t + 1 : t;
}
/* Whether 16-bit slot s (0..3) of a word passes the threshold. */
BT_INLINE int bt_dropout_slot(uint64_t word, int s, uint32_t thr) {
    return (uint32_t)((word >> (16 * s)) & 0xffffu) >= thr;
}
BT_INLINE int bt_dropout_keep(uint64_t key, uint64_t e, uint32_t thr) {
    return bt_dropout_slot(bt_dropout_word(key, e >> 2), (int)(e & 3), thr);
}

/* ------------------------------------------------------------ masking */

/* Token ids of bert-base-uncased that the MLM collator treats specially. */
#define BT_PAD_ID 0
#define BT_CLS_ID 101
#define BT_SEP_ID 102
#define BT_MASK_ID 103
#define BT_IGNORE (-100)

/* Hugging Face DataCollatorForLanguageModeling (mlm_probability 0.15): each
 * position whose token is not [PAD], [CLS] or [SEP] is chosen with p 0.15; a
 * chosen token becomes [MASK] with p 0.8, else a uniformly random id in
 * [0, vocab_size) with p 0.5, else stays.  labels[t] is the original id at
 * chosen positions and BT_IGNORE (-100) elsewhere.  Every draw comes from the
 * stream bt_key(seed, BT_RNG_MASK, step, sample_index, 0) at counters
 * 4*t+0..3, so masks depend only on (seed, step, sample, position).
 * Returns the number of chosen positions. */
int bt_mask_batch(uint64_t seed, uint64_t step, uint64_t sample_index, const uint16_t *ids, int seq_len,
                  int vocab_size, int32_t *out_inputs, int32_t *out_labels);
#define BT_MLM_PROB 0.15f
/* The draws of bt_mask_batch for one position, shared by it, the count
 * below and the GPU's masking kernel (trainer/cuda/mask.cuh): the key of a
 * sample's mask stream; whether position t (token id) is chosen; and what
 * a chosen position's input becomes. */
BT_INLINE uint64_t bt_mask_key(uint64_t seed, uint64_t step, uint64_t sample_index) {
    return bt_key(seed, BT_RNG_MASK, step, sample_index, 0);
}
BT_INLINE int bt_mask_chosen(uint64_t key, int t, int id) {
    if (id == BT_PAD_ID || id == BT_CLS_ID || id == BT_SEP_ID) return 0;
    return bt_uniform(key, 4 * (uint64_t)t) < BT_MLM_PROB;
}
BT_INLINE int32_t bt_mask_input(uint64_t key, int t, int id, int vocab_size) {
    uint64_t c = 4 * (uint64_t)t;
    if (bt_uniform(key, c + 1) < 0.8f) return BT_MASK_ID;
    if (bt_uniform(key, c + 2) < 0.5f) return (int32_t)(((uint64_t)bt_rand32(key, c + 3) * (uint64_t)vocab_size) >> 32);
    return id;
}
/* The number of positions bt_mask_batch chooses, without masking. */
int bt_mask_count(uint64_t seed, uint64_t step, uint64_t sample_index, const uint16_t *ids, int seq_len);
/* The "step" used for validation masks: fixed, so every evaluation (and
 * every run with the same eval seed) masks the same positions. */
#define BT_EVAL_STEP UINT64_MAX

#endif
