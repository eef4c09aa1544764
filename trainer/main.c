/* main.c - bin/bert-train: parses flags, installs the signal handlers,
 * prints progress; the work is in the trainer library.  See docs/bert-train.md. */
#include "trainer/train.h"
#include "trainer/cuda/train_cuda.h"
#include "trainer/cuda/dist_nccl.h"
#include "trainer/dist.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void usage(FILE *o) {
    fprintf(o,
"usage: bert-train --data SHARDS --out RUN [options]      train from scratch\n"
"       bert-train --resume RUN|CHECKPOINT [--steps N] ...   continue a run exactly\n"
"       bert-train --count-params [--config C] [--attention A]\n"
"\n"
"model\n"
"  --config tiny|small|base|FILE.json   preset or Hugging Face BertConfig JSON (base)\n"
"  --attention original|symmetric|pairwise   (vanilla = original; default original,\n"
"                                       or the JSON's plpi_affinity_function)\n"
"  --count-params                       print the number of parameters and exit\n"
"training (defaults: the paper's recipe)\n"
"  --data DIR           shard-pack folder (manifest.json + .npy shards)\n"
"  --out DIR            run folder: checkpoint-STEP/, latest, metrics.jsonl\n"
"                       (runs/CONFIG-ATTENTION, e.g. runs/base-pairwise)\n"
"  --steps N            length of the schedule, the rate reaches 0 there (200000)\n"
"  --stop-at N          stop after step N with a checkpoint (continue with --resume)\n"
"  --batch N            sequences per update (256)\n"
"  --micro-batch N      sequences per forward/backward; gradients accumulate (= batch)\n"
"  --lr X               peak learning rate (1e-4)\n"
"  --warmup N           linear warm-up steps (5%% of --steps: 10000 for 200000)\n"
"  --weight-decay X     AdamW weight decay, not on biases and LayerNorm (0.01)\n"
"  --adam-eps X         AdamW epsilon (1e-12)\n"
"  --clip X             clip the global gradient norm at X, 0: off (1.0)\n"
"  --seed N             weights, sample order, masks, dropout (42)\n"
"  --no-dropout         turn every dropout off\n"
"  --device cpu|cuda    where to train (default: cuda where a GPU is present, else cpu);\n"
"                       cuda: the CUDA trainer on GPU 0 (CUDA_VISIBLE_DEVICES picks it),\n"
"                       see docs/bert-train-cuda.md; builds without nvcc say so\n"
"  --precision bf16|fp32   cuda only: bf16 tensor-core compute with fp32 master weights\n"
"                       (bf16), or fp32 everywhere, slow, for checking against the CPU\n"
"  --attention-impl auto|flash|reference   cuda only: fused attention kernels (bf16, head\n"
"                       size 64) or cuBLAS products + softmax (auto: flash where it applies)\n"
"  --threads N          OpenMP threads of the CPU trainer (results do not depend on it)\n"
"evaluation, logging, checkpoints\n"
"  --eval-every N       validation loss every N steps, 0: never (250)\n"
"  --eval-samples N     validation samples used, 0: all (0)\n"
"  --eval-seed N        seed of the fixed validation masks (0)\n"
"  --save-every N       checkpoint every N steps, 0: only at the end (1000)\n"
"  --keep N             keep the newest N checkpoints, 0: all (0)\n"
"  --log-every N        a metrics.jsonl row every N steps (1)\n"
"  --verify-data        check every shard's sha256 and token ids before training\n"
"  --quiet              no progress lines\n"
"data parallelism: one process per GPU (or CPU process under mpirun); --batch stays\n"
"the global batch, each rank computes its share; rank 0 writes (docs/bert-train.md)\n"
"  torchrun --no-python --nproc-per-node 8 bert-train ...    (RANK, WORLD_SIZE, LOCAL_RANK,\n"
"                       MASTER_ADDR, MASTER_PORT)\n"
"  srun bert-train ...  (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; rendezvous at\n"
"                       MASTER_ADDR or the first host of SLURM_JOB_NODELIST)\n"
"  mpirun -n 2 bert-train ...   (OMPI_COMM_WORLD_*; the CPU trainer's way, over MPI)\n"
"  --dist-init tcp://HOST:PORT|file:///PATH   where the GPU ranks meet (NCCL's id)\n"
"  --dist-timeout S     give up on a missing or dead peer after S seconds (600)\n"
"SIGINT/SIGTERM: the last whole step is saved, then exit status 3.  Out of GPU memory:\n"
"the message names the buffer; use a smaller --micro-batch (gradients accumulate).\n"
"Exit status: 0 done, 1 error, 2 usage, 3 interrupted (checkpoint saved).\n");
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static int quiet;
static int my_rank;   /* data parallelism: this process's rank (0 alone) */
static void progress(void *ctx, const bt_progress *p) {
    (void)ctx;
    if (quiet) return;
    if (p->saved) { fprintf(stderr, "step %ld: saved %s\n", p->step, p->saved); return; }
    long s = (long)p->elapsed;
    char line[256];
    int k = snprintf(line, sizeof line, "step %ld/%ld", p->step, p->total);
    if (!isnan(p->loss)) k += snprintf(line + k, sizeof line - (size_t)k, "  loss %.4f", p->loss);
    if (!isnan(p->eval_loss)) k += snprintf(line + k, sizeof line - (size_t)k, "  eval %.4f", p->eval_loss);
    if (!isnan(p->lr)) k += snprintf(line + k, sizeof line - (size_t)k, "  lr %.2e  |g| %.3g  %.0f tok/s", p->lr, p->grad_norm, p->tokens_per_s);
    snprintf(line + k, sizeof line - (size_t)k, "  %ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    fprintf(stderr, "%s\n", line);
}

static void describe(void *ctx, const char *dev, const char *attention, int micro, size_t bytes) {
    (void)ctx;
    if (!quiet) fprintf(stderr, "device %s; attention %s; micro-batch %d; %.2f GB of GPU memory\n", dev, attention, micro, bytes / 1e9);
}

static int num(const char *flag, const char *s, double lo, double hi, double *out) {
    char *end; errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "bert-train: %s %s: expected a number in [%g, %g]\n", flag, s, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}
static int whole(const char *flag, const char *s, double lo, double hi, long *out) {
    double d;
    if (num(flag, s, lo, hi, &d)) return -1;
    if (d != floor(d)) { fprintf(stderr, "bert-train: %s %s: expected a whole number\n", flag, s); return -1; }
    *out = (long)d;
    return 0;
}

/* Data parallelism: when a launcher started this process (or --dist-init
 * names a rendezvous), the communicator of its device: MPI for the CPU,
 * NCCL for the GPU (rank 0's id carried by MPI under mpirun or srun when
 * no rendezvous is given, else by TCP or a file).  Nothing (*comm NULL)
 * for one process of its own.  0, or -1 after printing why. */
static int join_ranks(const char *device, const char *init, double timeout, bt_comm **comm, bt_comm **boot) {
    bt_dist_env d;
    char err[2048];
    int launched = bt_dist_detect(&d, init, timeout, err, sizeof err);
    if (launched < 0) { fprintf(stderr, "bert-train: %s\n", err); return -1; }
    if (!launched && !init) return 0;
    const int under_mpi = d.launcher && strcmp(d.launcher, "torchrun");   /* mpirun, or srun (PMIx) */
    if (!strcmp(device, "cpu")) {
        if (!under_mpi || !bt_mpi_built()) {
            if (d.world == 1) return 0;   /* alone: the single-process trainer */
            fprintf(stderr, "bert-train: rank %d of %d (%s): the CPU trainer's data parallelism runs over MPI: start it with mpirun (or srun with MPI)%s\n",
                    d.rank, d.world, d.launcher ? d.launcher : "--dist-init", bt_mpi_built() ? "" : "; and this build has no MPI");
            return -1;
        }
        if (!(*comm = bt_mpi_open(err, sizeof err))) { fprintf(stderr, "bert-train: rank %d: %s\n", d.rank, err); return -1; }
    } else {
        if (under_mpi && d.world > 1 && !init && !d.host[0] && bt_mpi_built() &&
            !(*boot = bt_mpi_open(err, sizeof err))) { fprintf(stderr, "bert-train: rank %d: %s\n", d.rank, err); return -1; }
        if (*boot && (*boot)->world != d.world) {
            fprintf(stderr, "bert-train: %s says %d ranks, MPI %d (srun without --mpi=pmix?): pass --dist-init or MASTER_ADDR\n", d.launcher, d.world, (*boot)->world);
            return -1;
        }
        if (!(*comm = btn_open(&d, *boot, err, sizeof err))) {
            fprintf(stderr, "bert-train: %s\n", err);
            if (*boot) (*boot)->abort(*boot);
            return -1;
        }
    }
    bt_comm *c = *comm;
    if (c->world != d.world || c->rank != d.rank) {
        fprintf(stderr, "bert-train: %s says rank %d of %d, %s says rank %d of %d\n", d.launcher ? d.launcher : "the environment",
                d.rank, d.world, c->name, c->rank, c->world);
        c->abort(c);
        return -1;
    }
    my_rank = c->rank;
    if (my_rank != 0) quiet = 1;   /* rank 0 speaks for the run */
    if (!quiet) fprintf(stderr, "bert-train: rank 0 of %d (%s), summing over %s\n", c->world, d.launcher ? d.launcher : "--dist-init", c->name);
    return 0;
}

int main(int argc, char **argv) {
    const char *config = NULL, *attn = NULL, *resume = NULL, *device = NULL, *dist_init = NULL;
    double dist_timeout = BT_DIST_TIMEOUT;
    btc_options co = { BTC_BF16, BTC_ATTN_AUTO, describe };
    const char *cuda_only = NULL;   /* a flag that only the CUDA trainer takes */
    int count = 0, verify = 0, threads = 0;
    long stop_at = 0;
    bt_opts o; bt_opts_defaults(&o);
    int warmup_given = 0;
    /* options that fix the trajectory of a run: refused with --resume */
    const char *fixed_given = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long w; double d;
#define NEED() do { if (!val) { fprintf(stderr, "bert-train: %s needs a value\n", a); return 2; } i++; } while (0)
#define FIXED() (fixed_given = fixed_given ? fixed_given : a)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--count-params")) count = 1;
        else if (!strcmp(a, "--verify-data")) verify = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--no-dropout")) { o.dropout = 0; FIXED(); }
        else if (!strcmp(a, "--config")) { NEED(); config = val; FIXED(); }
        else if (!strcmp(a, "--attention")) { NEED(); attn = val; FIXED(); }
        else if (!strcmp(a, "--data")) { NEED(); snprintf(o.data, sizeof o.data, "%s", val); }
        else if (!strcmp(a, "--out")) { NEED(); snprintf(o.out, sizeof o.out, "%s", val); FIXED(); }
        else if (!strcmp(a, "--resume")) { NEED(); resume = val; }
        else if (!strcmp(a, "--device")) { NEED(); device = val; }
        else if (!strcmp(a, "--steps")) { NEED(); if (whole(a, val, 1, 1e12, &w)) return 2; o.optim.total = w; }
        else if (!strcmp(a, "--stop-at")) { NEED(); if (whole(a, val, 1, 1e12, &w)) return 2; stop_at = w; }
        else if (!strcmp(a, "--batch")) { NEED(); if (whole(a, val, 1, 1 << 20, &w)) return 2; o.batch = (int)w; FIXED(); }
        else if (!strcmp(a, "--micro-batch")) { NEED(); if (whole(a, val, 1, 1 << 20, &w)) return 2; o.micro_batch = (int)w; FIXED(); }
        else if (!strcmp(a, "--lr")) { NEED(); if (num(a, val, 0, 10, &d)) return 2; o.optim.lr = (float)d; FIXED(); }
        else if (!strcmp(a, "--warmup")) { NEED(); if (whole(a, val, 0, 1e12, &w)) return 2; o.optim.warmup = w; warmup_given = 1; FIXED(); }
        else if (!strcmp(a, "--weight-decay")) { NEED(); if (num(a, val, 0, 1, &d)) return 2; o.optim.weight_decay = (float)d; FIXED(); }
        else if (!strcmp(a, "--adam-eps")) { NEED(); if (num(a, val, 0, 1, &d)) return 2; o.optim.eps = (float)d; FIXED(); }
        else if (!strcmp(a, "--clip")) { NEED(); if (num(a, val, 0, 1e9, &d)) return 2; o.optim.clip = (float)d; FIXED(); }
        else if (!strcmp(a, "--seed")) { NEED(); if (whole(a, val, 0, 9007199254740992.0, &w)) return 2; o.seed = (uint64_t)w; FIXED(); }
        else if (!strcmp(a, "--eval-seed")) { NEED(); if (whole(a, val, 0, 9007199254740992.0, &w)) return 2; o.eval_seed = (uint64_t)w; FIXED(); }
        else if (!strcmp(a, "--eval-every")) { NEED(); if (whole(a, val, 0, 1e12, &w)) return 2; o.eval_every = w; }
        else if (!strcmp(a, "--eval-samples")) { NEED(); if (whole(a, val, 0, 1e12, &w)) return 2; o.eval_samples = w; }
        else if (!strcmp(a, "--save-every")) { NEED(); if (whole(a, val, 0, 1e12, &w)) return 2; o.save_every = w; }
        else if (!strcmp(a, "--log-every")) { NEED(); if (whole(a, val, 1, 1e12, &w)) return 2; o.log_every = w; }
        else if (!strcmp(a, "--keep")) { NEED(); if (whole(a, val, 0, 1e6, &w)) return 2; o.keep = (int)w; }
        else if (!strcmp(a, "--precision")) {
            NEED(); cuda_only = a;
            if (!strcmp(val, "bf16")) co.precision = BTC_BF16;
            else if (!strcmp(val, "fp32")) co.precision = BTC_FP32;
            else { fprintf(stderr, "bert-train: --precision %s: not bf16 or fp32\n", val); return 2; }
        } else if (!strcmp(a, "--attention-impl")) {
            NEED(); cuda_only = a;
            if (!strcmp(val, "auto")) co.attn_impl = BTC_ATTN_AUTO;
            else if (!strcmp(val, "flash")) co.attn_impl = BTC_ATTN_FLASH;
            else if (!strcmp(val, "reference")) co.attn_impl = BTC_ATTN_REF;
            else { fprintf(stderr, "bert-train: --attention-impl %s: not auto, flash or reference\n", val); return 2; }
        }
        else if (!strcmp(a, "--dist-init")) { NEED(); dist_init = val; }
        else if (!strcmp(a, "--dist-timeout")) { NEED(); if (num(a, val, 0.1, 1e7, &d)) return 2; dist_timeout = d; }
        else if (!strcmp(a, "--threads")) { NEED(); if (whole(a, val, 1, 1024, &w)) return 2; threads = (int)w; }
        else { fprintf(stderr, "bert-train: unknown option %s (see --help)\n", a); return 2; }
#undef NEED
#undef FIXED
    }
    char err[2048];
    bt_run r;
    memset(&r, 0, sizeof r);
    if (device && strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(stderr, "bert-train: --device %s: not cpu or cuda\n", device);
        return 2;
    }
    if (device && !strcmp(device, "cpu") && cuda_only) {
        fprintf(stderr, "bert-train: %s is for --device cuda (the CPU trainer computes in fp32)\n", cuda_only);
        return 2;
    }

    if (count || !resume) {
        bt_config *cfg = &r.cfg;
        const char *c = config ? config : "base";
        if (bt_config_preset(c, cfg)) {
            if (!strchr(c, '/') && !strstr(c, ".json")) {
                fprintf(stderr, "bert-train: --config %s: not tiny, small, base or a .json file\n", c);
                return 2;
            }
            if (bt_config_load_json(c, cfg, err, sizeof err)) { fprintf(stderr, "bert-train: %s\n", err); return 2; }
        }
        if (attn && bt_attn_parse(attn, &cfg->attn)) {
            fprintf(stderr, "bert-train: --attention %s: not original, symmetric or pairwise\n", attn);
            return 2;
        }
        if (count) {
            size_t n = bt_param_count(cfg);
            if (!n) { bt_config_check(cfg, err, sizeof err); fprintf(stderr, "bert-train: %s\n", err); return 2; }
            printf("%zu\n", n);
            return 0;
        }
    }

    char ckpt[4200];
    if (resume) {
        if (fixed_given) {
            fprintf(stderr, "bert-train: %s cannot change when resuming: the run keeps its own (see RUN/checkpoint-*/trainer_state.json)\n", fixed_given);
            return 2;
        }
        if (bt_ckpt_find(resume, ckpt, sizeof ckpt, err, sizeof err)) { fprintf(stderr, "bert-train: %s\n", err); return 1; }
        bt_opts saved; bt_state st;
        bt_opts_defaults(&saved);
        if (bt_ckpt_load_meta(ckpt, &r.cfg, &saved, &st, err, sizeof err)) { fprintf(stderr, "bert-train: %s\n", err); return 1; }
        /* what may change: the schedule length, where to stop, evaluation, logging and saving cadence, the data path */
        bt_opts given = o;
        o = saved;
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (!strcmp(a, "--steps")) o.optim.total = given.optim.total;
            else if (!strcmp(a, "--eval-every")) o.eval_every = given.eval_every;
            else if (!strcmp(a, "--eval-samples")) o.eval_samples = given.eval_samples;
            else if (!strcmp(a, "--save-every")) o.save_every = given.save_every;
            else if (!strcmp(a, "--log-every")) o.log_every = given.log_every;
            else if (!strcmp(a, "--keep")) o.keep = given.keep;
            else if (!strcmp(a, "--data")) snprintf(o.data, sizeof o.data, "%s", given.data);
        }
        /* the run folder is the checkpoint's parent */
        if (strlen(ckpt) >= sizeof o.out) { fprintf(stderr, "bert-train: %s: path too long\n", ckpt); return 2; }
        memcpy(o.out, ckpt, strlen(ckpt) + 1);
        char *slash = strrchr(o.out, '/');
        if (slash && slash != o.out) *slash = 0; else snprintf(o.out, sizeof o.out, ".");
        if (st.step >= (stop_at > 0 ? stop_at : o.optim.total)) {
            fprintf(stderr, "bert-train: %s is at step %ld already; pass --steps N (N > %ld) to train further\n", ckpt, st.step, st.step);
            return 2;
        }
        r.resume = ckpt;
    } else {
        if (!o.data[0]) { fprintf(stderr, "bert-train: --data is required (a shard-pack folder; see --help)\n"); return 2; }
        if (!o.out[0]) {   /* runs/<config name>-<attention> */
            const char *c = config ? config : "base", *b = strrchr(c, '/');
            b = b ? b + 1 : c;
            int n = (int)strcspn(b, ".");
            snprintf(o.out, sizeof o.out, "runs/%.*s-%s", n, b, r.cfg.attn == BT_ATTN_SYMMETRIC ? "symmetric" : r.cfg.attn == BT_ATTN_PAIRWISE ? "pairwise" : "original");
            if (!quiet) fprintf(stderr, "bert-train: run folder %s (--out to choose another)\n", o.out);
        }
        if (!warmup_given) o.optim.warmup = o.optim.total / 20;
        char absdata[PATH_MAX];   /* the state records where the data is, for --resume from anywhere */
        if (realpath(o.data, absdata) && strlen(absdata) < sizeof o.data) memcpy(o.data, absdata, strlen(absdata) + 1);
        char latest[2200]; struct stat sb;
        snprintf(latest, sizeof latest, "%s/latest", o.out);
        if (stat(latest, &sb) == 0) {
            fprintf(stderr, "bert-train: %s already holds a run; continue it with --resume %s, or choose another --out\n", o.out, o.out);
            return 2;
        }
        if (stop_at > o.optim.total) { fprintf(stderr, "bert-train: --stop-at %ld is beyond --steps %ld\n", stop_at, o.optim.total); return 2; }
    }
    if (!device) {   /* cuda where a GPU is present; say so when it is not */
        char why[256];
        device = btc_available(why, sizeof why) ? "cuda" : "cpu";
        if (!strcmp(device, "cpu") && cuda_only) { fprintf(stderr, "bert-train: %s needs a GPU: %s\n", cuda_only, why); return 1; }
        if (!strcmp(device, "cpu") && !quiet) fprintf(stderr, "bert-train: training on the CPU (%s; --device cpu says so and silences this)\n", why);
    }
    snprintf(o.device, sizeof o.device, "%s", device);
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    bt_comm *comm = NULL, *boot = NULL;
    if (join_ranks(device, dist_init, dist_timeout, &comm, &boot)) return 1;
    r.comm = comm;
    r.opts = o;
    r.stop_at = stop_at;
    r.verify_data = verify;
    r.stop = &stop_flag;
    r.progress = progress;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = strcmp(device, "cuda") ? bt_train_cpu(&r, err, sizeof err) : bt_train_cuda(&r, &co, err, sizeof err);
    if (rc < 0) {
        if (comm) fprintf(stderr, "bert-train: rank %d of %d: %s\n", comm->rank, comm->world, err);
        else fprintf(stderr, "bert-train: %s\n", err);
        if (comm && comm->world > 1) comm->abort(comm);   /* no rank waits for this one */
        if (boot && boot->world > 1) boot->abort(boot);
    }
    if (comm) comm->close(comm);
    if (boot) boot->close(boot);
    if (rc < 0) return 1;
    if (rc == 1) {
        if (my_rank == 0) fprintf(stderr, "bert-train: interrupted; continue with: bert-train --resume %s\n", o.out);
        return 3;
    }
    return 0;
}
