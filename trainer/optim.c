/* optim.c - AdamW, the learning-rate schedule and gradient clipping. */
#include "trainer/optim.h"
#include <math.h>

void bt_optim_defaults(bt_optim_cfg *o) {
    o->lr = 1e-4f; o->beta1 = 0.9f; o->beta2 = 0.999f; o->eps = 1e-12f; o->weight_decay = 0.01f;
    o->clip = 1.0f; o->warmup = 10000; o->total = 200000;
}

double bt_lr_at(const bt_optim_cfg *o, long step) {
    if (step < o->warmup) return (double)o->lr * (double)step / (double)(o->warmup > 1 ? o->warmup : 1);
    long rest = o->total - o->warmup;
    double f = (double)(o->total - step) / (double)(rest > 1 ? rest : 1);
    return (double)o->lr * (f > 0 ? f : 0);
}

double bt_grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

float bt_clip_coef(const bt_optim_cfg *o, double norm) {
    if (o->clip <= 0) return 1.0f;
    double c = (double)o->clip / (norm + 1e-6);
    return c < 1.0 ? (float)c : 1.0f;
}

void bt_adamw_update(const bt_layout *L, const bt_optim_cfg *o, float *params, const float *grads, float *m,
                     float *v, long t, double lr, float grad_scale) {
    const float b1 = o->beta1, b2 = o->beta2;
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int k = 0; k < L->n; k++) {
        const bt_tensor *tt = &L->t[k];
        const float decay = tt->decay ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
        float *p = params + tt->offset, *mm = m + tt->offset, *vv = v + tt->offset;
        const float *g = grads + tt->offset;
#pragma omp parallel for schedule(static) if (tt->numel >= ((size_t)1 << 20))
        for (size_t i = 0; i < tt->numel; i++) {
            float gi = g[i] * grad_scale;
            p[i] *= decay;
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            p[i] -= step_size * mm[i] / (sqrtf(vv[i]) / bc2_sqrt + o->eps);
        }
    }
}
