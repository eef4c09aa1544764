/* optim.h - AdamW as torch.optim.AdamW computes it, the linear warm-up /
 * linear decay schedule of transformers' get_linear_schedule_with_warmup,
 * and clipping at a global gradient norm (torch.nn.utils.clip_grad_norm_).
 * Weight decay follows the parameter table's decay flags (not on biases
 * and LayerNorm).  Shared by the CPU and CUDA trainers (the CUDA one runs
 * the same arithmetic in a kernel; bt_lr_at and the constants are here). */
#ifndef SYMBERT_TRAINER_OPTIM_H
#define SYMBERT_TRAINER_OPTIM_H
#include "trainer/model.h"

typedef struct bt_optim_cfg {
    float lr;             /* peak learning rate (1e-4) */
    float beta1, beta2;   /* 0.9, 0.999 */
    float eps;            /* 1e-12 */
    float weight_decay;   /* 0.01 */
    float clip;           /* max global gradient norm (1.0); <= 0: no clipping */
    long warmup;          /* linear warm-up steps (10,000) */
    long total;           /* schedule length: the rate reaches 0 here (200,000) */
} bt_optim_cfg;

/* The paper's recipe. */
void bt_optim_defaults(bt_optim_cfg *o);
/* Learning rate of update number `step` (0-based), as HF's LambdaLR gives
 * it: lr * step/warmup during warm-up (so the very first update has rate
 * 0 when warmup > 0), then lr * (total - step)/(total - warmup), never < 0. */
double bt_lr_at(const bt_optim_cfg *o, long step);
/* L2 norm of n floats, summed in double in a fixed order. */
double bt_grad_norm(const float *g, size_t n);
/* The factor clip_grad_norm_ multiplies gradients by: min(1, clip/(norm+1e-6)). */
float bt_clip_coef(const bt_optim_cfg *o, double norm);
/* One AdamW update of every tensor of L: grads are first multiplied by
 * grad_scale (the clipping factor); t is the 1-based update count (bias
 * correction); m, v are the moment buffers (L->total floats each, zero at
 * t = 1). */
void bt_adamw_update(const bt_layout *L, const bt_optim_cfg *o, float *params, const float *grads, float *m,
                     float *v, long t, double lr, float grad_scale);
#endif
