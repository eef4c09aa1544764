/* ckpt.h - checkpoints, shared by the CPU and CUDA trainers.
 *
 * A run folder RUN holds checkpoint-STEP/ folders, a file "latest" naming
 * the newest one, and metrics.jsonl.  A checkpoint folder holds
 *   model.safetensors      every tensor of the parameter table under its
 *                          Hugging Face name, F32 (what transformers/plpi load)
 *   config.json            BertConfig + model_type "plpi/bert" + plpi_affinity_function
 *   optimizer.safetensors  AdamW moments: "exp_avg.<name>", "exp_avg_sq.<name>"
 *   trainer_state.json     step, seeds, every option that shapes the run
 *                          (the RNG "state" is the seed and the step: every
 *                          stream is counter-based; the data position is the step)
 * It is written into a hidden temporary folder, each file fsynced, then
 * renamed into place, then "latest" is replaced atomically: a crash leaves
 * the previous checkpoint as the latest one. */
#ifndef SYMBERT_TRAINER_CKPT_H
#define SYMBERT_TRAINER_CKPT_H
#include "trainer/model.h"
#include "trainer/optim.h"

/* ---- safetensors (F32 only) ---- */

/* Writes the tensors of L from bufs[k] with names prefixes[k] + name, for
 * k < nbufs, atomically.  0, or -1 with a message. */
int bt_st_write(const char *path, const bt_layout *L, int nbufs, const char *const *prefixes,
                const float *const *bufs, char *err, size_t errlen);
/* Reads every tensor of L (name prefix + table name) into buf, checking
 * dtype F32, shape and offsets.  Extra tensors in the file are ignored
 * (e.g. a tied cls.predictions.decoder.weight written by transformers). */
int bt_st_read(const char *path, const bt_layout *L, const char *prefix, float *buf, char *err, size_t errlen);

/* ---- training options and state ---- */

typedef struct bt_opts {
    char data[2048];          /* shard folder */
    char out[2048];           /* run folder */
    bt_optim_cfg optim;       /* optim.total is --steps */
    int batch;                /* sequences per update (256) */
    int micro_batch;          /* sequences per forward/backward (0: = batch) */
    int dropout;              /* 1: the config's dropout; 0: all dropout off */
    uint64_t seed;            /* init, sample order, masks, dropout */
    uint64_t eval_seed;       /* the fixed evaluation masks */
    long eval_every;          /* 0: never (250) */
    long eval_samples;        /* 0: the whole validation split */
    long save_every;          /* 0: only at the end (1000) */
    long log_every;           /* metrics.jsonl line every N steps (1) */
    int keep;                 /* keep the newest N checkpoints (0: all) */
    char device[16];          /* "cpu" or "cuda" (informational in the state) */
    /* the data's identity, recorded by bt_data_bind: a resume on other data is refused */
    char data_manifest_sha256[65];   /* of DATA/manifest.json ("" before the first bind) */
    int data_seq_len;
    char data_vocab_sha256[65];
} bt_opts;

/* The paper's recipe; data/out empty. */
void bt_opts_defaults(bt_opts *o);

typedef struct bt_state {
    long step;                /* updates done */
    double tokens;            /* tokens trained on */
    double elapsed;           /* seconds spent training (excluding evaluation and saving) */
} bt_state;

/* trainer_state.json text; returns the length (snprintf semantics). */
int bt_state_to_json(const bt_opts *o, const bt_state *s, char *buf, size_t cap);
/* Parses trainer_state.json at path into o and s.  0, or -1 with message. */
int bt_state_read(const char *path, bt_opts *o, bt_state *s, char *err, size_t errlen);

/* Binds a run to its data (the shard folder o->data, whose manifest says
 * seq_len and vocab_sha256).  A fresh run (o->data_manifest_sha256 empty)
 * records the sha256 of manifest.json, seq_len and the vocab's sha256; a
 * resumed run must find the same: the manifest names every shard with its
 * sha256, so a moved copy of the folder passes and other shards do not.
 * 0, or -1 with a message naming each difference. */
int bt_data_bind(bt_opts *o, int seq_len, const char *vocab_sha256, char *err, size_t errlen);

/* ---- checkpoint folders ---- */

/* Removes what killed runs left in the run folder: .tmp-checkpoint-STEP.PID
 * and .old-checkpoint-STEP.PID folders, .NAME.tmp.PID files, whenever PID is
 * not a live process (a live one's work in progress is left alone).  An
 * .old-checkpoint-STEP whose checkpoint-STEP is missing (a kill between the
 * two renames of a replace) is moved back instead.  Returns how many entries
 * were removed or restored. */
int bt_run_clean(const char *run);

/* Writes RUN/checkpoint-STEP (replacing one of that step), updates
 * RUN/latest, then removes older checkpoints beyond o->keep.  m/v may be
 * NULL (model only).  The folder's path goes to path_out (optional). */
int bt_ckpt_save(const bt_opts *o, const bt_state *s, const bt_layout *L, const float *params,
                 const float *m, const float *v, char *path_out, size_t path_cap, char *err, size_t errlen);
/* Resolves what --resume names: a checkpoint folder (has trainer_state.json)
 * or a run folder (its "latest", after bt_run_clean).  Writes the checkpoint
 * folder to out. */
int bt_ckpt_find(const char *path, char *out, size_t cap, char *err, size_t errlen);
/* Loads a checkpoint folder: config (config.json), options and state
 * (trainer_state.json).  The caller builds the layout and then calls
 * bt_ckpt_load_tensors. */
int bt_ckpt_load_meta(const char *dir, bt_config *cfg, bt_opts *o, bt_state *s, char *err, size_t errlen);
/* model.safetensors into params; optimizer.safetensors into m, v (if not NULL). */
int bt_ckpt_load_tensors(const char *dir, const bt_layout *L, float *params, float *m, float *v, char *err, size_t errlen);
#endif
