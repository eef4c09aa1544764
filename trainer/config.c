/* config.c - model configurations, the parameter table and initial weights.
 *
 * The table is the single source of truth for tensor names, shapes and
 * offsets: the safetensors writer, the optimiser's weight-decay mask, the
 * CPU forward pass and the CUDA trainer all look tensors up here. */
#include "trainer/model.h"
#include "pipeline/json.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) { va_list ap; va_start(ap, fmt); vsnprintf(err, errlen, fmt, ap); va_end(ap); }
    return -1;
}

static void common(bt_config *c) {
    c->vocab_size = 30522; c->max_pos = 512; c->type_vocab = 2;
    c->ln_eps = 1e-12f; c->hidden_dropout = 0.1f; c->attn_dropout = 0.1f; c->init_std = 0.02f;
    c->pad_id = 0; c->attn = BT_ATTN_ORIGINAL;
}

int bt_config_preset(const char *name, bt_config *cfg) {
    static const struct { const char *name; int layers, heads, hidden, ffn; } p[] = {
        { "tiny", 2, 2, 128, 512 }, { "small", 4, 8, 512, 2048 }, { "base", 12, 12, 768, 3072 },
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (!strcmp(name, p[i].name)) {
            memset(cfg, 0, sizeof *cfg); common(cfg);
            cfg->layers = p[i].layers; cfg->heads = p[i].heads; cfg->hidden = p[i].hidden; cfg->ffn = p[i].ffn;
            return 0;
        }
    return -1;
}

int bt_attn_parse(const char *s, bt_attn *out) {
    if (!strcmp(s, "original") || !strcmp(s, "vanilla")) *out = BT_ATTN_ORIGINAL;
    else if (!strcmp(s, "symmetric")) *out = BT_ATTN_SYMMETRIC;
    else if (!strcmp(s, "pairwise")) *out = BT_ATTN_PAIRWISE;
    else return -1;
    return 0;
}

const char *bt_attn_plpi_name(bt_attn a) {
    return a == BT_ATTN_SYMMETRIC ? "symmetric" : a == BT_ATTN_PAIRWISE ? "pairwise" : "vanilla";
}

int bt_config_check(const bt_config *c, char *err, size_t errlen) {
    if (c->vocab_size < 1 || c->vocab_size > 65536) return fail(err, errlen, "vocab_size %d not in 1..65536", c->vocab_size);
    if (c->max_pos < 1 || c->type_vocab < 1) return fail(err, errlen, "max_position_embeddings and type_vocab_size must be positive");
    if (c->hidden < 1 || c->heads < 1 || c->ffn < 1) return fail(err, errlen, "hidden_size, num_attention_heads and intermediate_size must be positive");
    if (c->hidden % c->heads) return fail(err, errlen, "hidden_size %d is not a multiple of num_attention_heads %d", c->hidden, c->heads);
    if (c->layers < 1 || c->layers > BT_MAX_LAYERS) return fail(err, errlen, "num_hidden_layers %d not in 1..%d", c->layers, BT_MAX_LAYERS);
    if (!(c->hidden_dropout >= 0 && c->hidden_dropout < 1) || !(c->attn_dropout >= 0 && c->attn_dropout < 1))
        return fail(err, errlen, "dropout probabilities must be in [0, 1)");
    if (!(c->ln_eps > 0) || !(c->init_std >= 0)) return fail(err, errlen, "layer_norm_eps must be > 0 and initializer_range >= 0");
    if (c->pad_id < 0 || c->pad_id >= c->vocab_size) return fail(err, errlen, "pad_token_id %d outside the vocab", c->pad_id);
    if ((unsigned)c->attn > BT_ATTN_PAIRWISE) return fail(err, errlen, "unknown attention kind");
    return 0;
}

/* ------------------------------------------------------------ JSON */

int bt_config_load_json(const char *path, bt_config *cfg, char *err, size_t errlen) {
    enum { VOCAB, HIDDEN, LAYERS, HEADS, FFN, MAXPOS, TYPES, EPS, HDROP, ADROP, STD, PAD, AFF, ACT, NKEYS };
    static const char *keys[NKEYS] = { "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "initializer_range", "pad_token_id", "plpi_affinity_function", "hidden_act" };
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: %s", path, strerror(errno));
    char *buf = NULL; size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= (1u << 24)) { fclose(f); free(buf); return fail(err, errlen, "%s: larger than 16 MiB, not a config", path); }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) { fclose(f); free(buf); return fail(err, errlen, "%s: out of memory", path); }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int rerr = ferror(f); fclose(f);
    if (rerr) { free(buf); return fail(err, errlen, "%s: read error", path); }
    js_path paths[NKEYS]; js_val v[NKEYS];
    for (int i = 0; i < NKEYS; i++) { paths[i].key[0] = keys[i]; paths[i].depth = 1; }
    char jerr[200];
    if (js_scan(buf, n, paths, NKEYS, v, jerr, sizeof jerr) < 0) { free(buf); return fail(err, errlen, "%s: %s", path, jerr); }
    bt_config c; bt_config_preset("base", &c);
    int *ints[] = { [VOCAB] = &c.vocab_size, [HIDDEN] = &c.hidden, [LAYERS] = &c.layers, [HEADS] = &c.heads,
                    [FFN] = &c.ffn, [MAXPOS] = &c.max_pos, [TYPES] = &c.type_vocab, [PAD] = &c.pad_id };
    float *flts[] = { [EPS] = &c.ln_eps, [HDROP] = &c.hidden_dropout, [ADROP] = &c.attn_dropout, [STD] = &c.init_std };
    int rc = 0;
    for (int i = 0; i < NKEYS && rc == 0; i++) {
        if (v[i].type == JS_ABSENT) continue;
        if (i <= PAD && i != EPS && i != HDROP && i != ADROP && i != STD) {
            double d = v[i].type == JS_NUMBER ? js_number(&v[i]) : NAN;
            if (!(d >= 0 && d <= 1e9 && d == floor(d))) rc = fail(err, errlen, "%s: \"%s\" must be a non-negative integer", path, keys[i]);
            else *ints[i] = (int)d;
        } else if (i <= PAD) {
            double d = v[i].type == JS_NUMBER ? js_number(&v[i]) : NAN;
            if (!isfinite(d)) rc = fail(err, errlen, "%s: \"%s\" must be a number", path, keys[i]);
            else *flts[i] = (float)d;
        } else if (i == AFF) {
            if (v[i].type == JS_NULL) continue;
            if (v[i].type != JS_STRING) { rc = fail(err, errlen, "%s: \"plpi_affinity_function\" must be a string", path); break; }
            if (js_string_eq(&v[i], "vanilla", 0) || js_string_eq(&v[i], "original", 0)) c.attn = BT_ATTN_ORIGINAL;
            else if (js_string_eq(&v[i], "symmetric", 0)) c.attn = BT_ATTN_SYMMETRIC;
            else if (js_string_eq(&v[i], "pairwise", 0)) c.attn = BT_ATTN_PAIRWISE;
            else rc = fail(err, errlen, "%s: plpi_affinity_function %.*s is not vanilla, symmetric or pairwise", path, (int)(v[i].n > 40 ? 40 : v[i].n), v[i].p);
        } else if (i == ACT) {
            if (v[i].type != JS_STRING || !js_string_eq(&v[i], "gelu", 0))
                rc = fail(err, errlen, "%s: hidden_act %.*s is not supported (only \"gelu\", the erf form)", path, (int)(v[i].n > 40 ? 40 : v[i].n), v[i].p);
        }
    }
    free(buf);
    if (rc) return rc;
    char cerr[200];
    if (bt_config_check(&c, cerr, sizeof cerr)) return fail(err, errlen, "%s: %s", path, cerr);
    *cfg = c;
    return 0;
}

const char *bt_float_str(float x, char buf[32]) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, 32, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    return buf;
}

int bt_config_to_json(const bt_config *c, char *buf, size_t cap) {
    char f1[32], f2[32], f3[32], f4[32];
    return snprintf(buf, cap,
        "{\n"
        "  \"architectures\": [\"BertForMaskedLM\"],\n"
        "  \"model_type\": \"plpi/bert\",\n"
        "  \"plpi_affinity_function\": \"%s\",\n"
        "  \"vocab_size\": %d,\n"
        "  \"hidden_size\": %d,\n"
        "  \"num_hidden_layers\": %d,\n"
        "  \"num_attention_heads\": %d,\n"
        "  \"intermediate_size\": %d,\n"
        "  \"hidden_act\": \"gelu\",\n"
        "  \"hidden_dropout_prob\": %s,\n"
        "  \"attention_probs_dropout_prob\": %s,\n"
        "  \"max_position_embeddings\": %d,\n"
        "  \"type_vocab_size\": %d,\n"
        "  \"initializer_range\": %s,\n"
        "  \"layer_norm_eps\": %s,\n"
        "  \"pad_token_id\": %d,\n"
        "  \"position_embedding_type\": \"absolute\",\n"
        "  \"tie_word_embeddings\": true,\n"
        "  \"torch_dtype\": \"float32\"\n"
        "}\n",
        bt_attn_plpi_name(c->attn), c->vocab_size, c->hidden, c->layers, c->heads, c->ffn,
        bt_float_str(c->hidden_dropout, f1), bt_float_str(c->attn_dropout, f2), c->max_pos, c->type_vocab,
        bt_float_str(c->init_std, f3), bt_float_str(c->ln_eps, f4), c->pad_id);
}

/* ------------------------------------------------------------ the table */

static void add(bt_layout *L, bt_kind kind, int layer, const char *name, int ndim, int d0, int d1, int d2,
                int decay, bt_init init) {
    bt_tensor *t = &L->t[L->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind; t->layer = layer; t->ndim = ndim;
    t->shape[0] = d0; t->shape[1] = d1; t->shape[2] = d2;
    t->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    t->offset = L->total; t->decay = decay; t->init = init;
    L->index[kind][layer < 0 ? 0 : layer] = L->n;
    L->total += t->numel;
    L->n++;
}

int bt_layout_init(bt_layout *L, const bt_config *c, char *err, size_t errlen) {
    memset(L, 0, sizeof *L);
    if (bt_config_check(c, err, errlen)) return -1;
    L->cfg = *c;
    for (int k = 0; k < BT_T_KINDS; k++) for (int l = 0; l < BT_MAX_LAYERS; l++) L->index[k][l] = -1;
    int per_layer = 17;
    L->t = calloc((size_t)(10 + per_layer * c->layers), sizeof *L->t);
    if (!L->t) return fail(err, errlen, "out of memory");
    int h = c->hidden, f = c->ffn, H = c->heads, d = c->hidden / c->heads;
    char nm[96];
    add(L, BT_T_WORD_EMB, -1, "bert.embeddings.word_embeddings.weight", 2, c->vocab_size, h, 0, 1, BT_INIT_NORMAL);
    add(L, BT_T_POS_EMB, -1, "bert.embeddings.position_embeddings.weight", 2, c->max_pos, h, 0, 1, BT_INIT_NORMAL);
    add(L, BT_T_TYPE_EMB, -1, "bert.embeddings.token_type_embeddings.weight", 2, c->type_vocab, h, 0, 1, BT_INIT_NORMAL);
    add(L, BT_T_EMB_LN_W, -1, "bert.embeddings.LayerNorm.weight", 1, h, 0, 0, 0, BT_INIT_ONE);
    add(L, BT_T_EMB_LN_B, -1, "bert.embeddings.LayerNorm.bias", 1, h, 0, 0, 0, BT_INIT_ZERO);
#define P(suffix) (snprintf(nm, sizeof nm, "bert.encoder.layer.%d.%s", l, suffix), nm)
    for (int l = 0; l < c->layers; l++) {
        add(L, BT_T_Q_W, l, P("attention.self.query.weight"), 2, h, h, 0, 1, BT_INIT_NORMAL);
        add(L, BT_T_Q_B, l, P("attention.self.query.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
        if (c->attn == BT_ATTN_ORIGINAL) {
            add(L, BT_T_K_W, l, P("attention.self.key.weight"), 2, h, h, 0, 1, BT_INIT_NORMAL);
            add(L, BT_T_K_B, l, P("attention.self.key.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
        }
        if (c->attn == BT_ATTN_PAIRWISE)
            add(L, BT_T_PAIR, l, P("attention.self.pairwise_factors"), 3, H, d, d, 1, BT_INIT_STDNORMAL);
        add(L, BT_T_V_W, l, P("attention.self.value.weight"), 2, h, h, 0, 1, BT_INIT_NORMAL);
        add(L, BT_T_V_B, l, P("attention.self.value.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
        add(L, BT_T_AO_W, l, P("attention.output.dense.weight"), 2, h, h, 0, 1, BT_INIT_NORMAL);
        add(L, BT_T_AO_B, l, P("attention.output.dense.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
        add(L, BT_T_ALN_W, l, P("attention.output.LayerNorm.weight"), 1, h, 0, 0, 0, BT_INIT_ONE);
        add(L, BT_T_ALN_B, l, P("attention.output.LayerNorm.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
        add(L, BT_T_FFN1_W, l, P("intermediate.dense.weight"), 2, f, h, 0, 1, BT_INIT_NORMAL);
        add(L, BT_T_FFN1_B, l, P("intermediate.dense.bias"), 1, f, 0, 0, 0, BT_INIT_ZERO);
        add(L, BT_T_FFN2_W, l, P("output.dense.weight"), 2, h, f, 0, 1, BT_INIT_NORMAL);
        add(L, BT_T_FFN2_B, l, P("output.dense.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
        add(L, BT_T_OLN_W, l, P("output.LayerNorm.weight"), 1, h, 0, 0, 0, BT_INIT_ONE);
        add(L, BT_T_OLN_B, l, P("output.LayerNorm.bias"), 1, h, 0, 0, 0, BT_INIT_ZERO);
    }
#undef P
    add(L, BT_T_HEAD_W, -1, "cls.predictions.transform.dense.weight", 2, h, h, 0, 1, BT_INIT_NORMAL);
    add(L, BT_T_HEAD_B, -1, "cls.predictions.transform.dense.bias", 1, h, 0, 0, 0, BT_INIT_ZERO);
    add(L, BT_T_HEAD_LN_W, -1, "cls.predictions.transform.LayerNorm.weight", 1, h, 0, 0, 0, BT_INIT_ONE);
    add(L, BT_T_HEAD_LN_B, -1, "cls.predictions.transform.LayerNorm.bias", 1, h, 0, 0, 0, BT_INIT_ZERO);
    add(L, BT_T_DEC_B, -1, "cls.predictions.bias", 1, c->vocab_size, 0, 0, 0, BT_INIT_ZERO);
    return 0;
}

void bt_layout_free(bt_layout *L) {
    free(L->t);
    L->t = NULL; L->n = 0;
}

const bt_tensor *bt_tensor_of(const bt_layout *L, bt_kind kind, int layer) {
    if ((unsigned)kind >= BT_T_KINDS) return NULL;
    if (layer < 0 || layer >= BT_MAX_LAYERS) layer = 0;
    int i = L->index[kind][layer];
    if (i < 0 && kind <= BT_T_EMB_LN_B) i = L->index[kind][0];
    if (i < 0 && kind >= BT_T_HEAD_W) i = L->index[kind][0];
    return i < 0 ? NULL : &L->t[i];
}

size_t bt_off(const bt_layout *L, bt_kind kind, int layer) {
    const bt_tensor *t = bt_tensor_of(L, kind, layer);
    return t ? t->offset : (size_t)-1;
}

const bt_tensor *bt_tensor_find(const bt_layout *L, const char *name) {
    for (int i = 0; i < L->n; i++) if (!strcmp(L->t[i].name, name)) return &L->t[i];
    return NULL;
}

size_t bt_param_count(const bt_config *cfg) {
    bt_layout L;
    if (bt_layout_init(&L, cfg, NULL, 0)) return 0;
    size_t n = L.total;
    bt_layout_free(&L);
    return n;
}

/* ------------------------------------------------------------ init */

/* Standard normal from two uniforms of the stream (Box-Muller, in double). */
static float normal01(uint64_t key, uint64_t i) {
    uint64_t a = bt_mix64(key + 0x9e3779b97f4a7c15ULL * (2 * i + 1));
    uint64_t b = bt_mix64(key + 0x9e3779b97f4a7c15ULL * (2 * i + 2));
    double u1 = ((double)(a >> 11) + 1.0) * (1.0 / 9007199254740992.0);   /* (0, 1] */
    double u2 = (double)(b >> 11) * (1.0 / 9007199254740992.0);           /* [0, 1) */
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void bt_params_init(const bt_layout *L, float *params, uint64_t seed) {
    for (int k = 0; k < L->n; k++) {
        const bt_tensor *t = &L->t[k];
        float *p = params + t->offset;
        uint64_t key = bt_key(seed, BT_RNG_INIT, (uint64_t)k, 0, 0);
        for (size_t i = 0; i < t->numel; i++) {
            switch (t->init) {
            case BT_INIT_NORMAL: p[i] = L->cfg.init_std * normal01(key, i); break;
            case BT_INIT_STDNORMAL: p[i] = normal01(key, i); break;
            case BT_INIT_ZERO: p[i] = 0.0f; break;
            case BT_INIT_ONE: p[i] = 1.0f; break;
            }
        }
        if (t->kind == BT_T_WORD_EMB) memset(p + (size_t)L->cfg.pad_id * (size_t)t->shape[1], 0, (size_t)t->shape[1] * sizeof *p);
    }
}
