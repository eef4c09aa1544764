/* shard.h - the training shards: fixed-length samples of token ids in NumPy
 * .npy files, a manifest.json that says what the folder holds, and the packer
 * that cuts wordpiece's document stream into them.
 *
 * Why .npy: any Python user reads a shard with numpy.load(path,
 * mmap_mode='r') and gets an (N, seq_len) uint16 array with no copy; the
 * trainer mmaps the same bytes.  Why a manifest: a folder is complete only
 * when manifest.json names every shard with its sha256; it is written last,
 * so a run that dies leaves no manifest and therefore nothing a reader takes
 * for a finished folder.
 *
 * Packing (the paper's run_mlm group_texts, without its per-1000-document
 * tail drop): documents, each already [CLS] ... [SEP], are concatenated in
 * order and cut into samples of seq_len tokens; only the final partial sample
 * of the whole stream is dropped (counted in dropped_tail_tokens).
 *
 * Validation: val_samples samples are chosen by reservoir sampling over the
 * stream of samples (Algorithm R) with the randomness of sample i taken from
 * a hash of (seed, i), so the choice depends only on (seed, sample count) and
 * is uniform over the whole stream.  Each sample goes to exactly one split.
 * Memory: the reservoir holds val_samples x seq_len x 2 bytes (10 MiB for
 * 10,000 samples of 512) plus one write buffer, whatever the input size.
 * Train samples are written in stream order, except that a sample evicted
 * from the reservoir is written when it is evicted (about
 * val_samples x ln(total/val_samples) of them).  Validation shards hold the
 * chosen samples in stream order.
 *
 * Files: every shard is written under a hidden temporary name (atomic.h),
 * fsynced, renamed to a hidden ".pending-" name when full, and renamed to its
 * final name only when the whole run succeeded, just before the manifest.
 *
 * Errors are return values with a one-line message; nothing here prints. */
#ifndef SYMBERT_SHARD_H
#define SYMBERT_SHARD_H
#include <stddef.h>
#include <stdint.h>

#define SHARD_FORMAT "symbert-shards"
#define SHARD_VERSION 1
#define SHARD_NPY_HEADER 128          /* bytes before the data in the .npy files we write */
#define SHARD_DEFAULT_SEQ_LEN 512
#define SHARD_DEFAULT_SHARD_SAMPLES 65536
#define SHARD_MAX_SEQ_LEN (1u << 20)
#define SHARD_MAX_SHARDS 100000       /* names have five digits */
#define SHARD_CLS_ID 101              /* [CLS]: every document starts with it */

enum { SHARD_TRAIN = 0, SHARD_VALIDATION = 1 };
/* "train" / "validation" */
const char *shard_split_name(int split);

/* ---- .npy (NumPy format 1.0 written; 1.0, 2.0 and 3.0 read) ---- */

/* Header of a C-order '<u2' array of shape (rows, cols), padded with spaces
 * to SHARD_NPY_HEADER bytes (data then starts 64-byte aligned). */
void shard_npy_header(unsigned char out[SHARD_NPY_HEADER], uint64_t rows, uint32_t cols);
/* Parses an .npy header at the start of buf (n bytes available).  Accepts
 * only 2-D, C order, dtype '<u2' (or '|u2'/'=u2' on little-endian hosts is
 * not accepted: only '<u2').  Fills rows, cols and the data offset.  Returns
 * 0, or -1 with "what is wrong" in err.  Never reads past buf + n. */
int shard_npy_parse(const unsigned char *buf, size_t n, uint64_t *rows, uint32_t *cols,
                    size_t *data_off, char *err, size_t errlen);

/* A read-only mmap of a whole .npy file, checked: header valid and file
 * size exactly data_off + rows * cols * 2. */
typedef struct {
    const uint16_t *data;   /* rows x cols, C order */
    uint64_t rows; uint32_t cols;
    size_t data_off, size;
    void *map;
} shard_npy;
int shard_npy_open(shard_npy *a, const char *path, char *err, size_t errlen);
void shard_npy_close(shard_npy *a);

/* ---- manifest.json ---- */

typedef struct {
    char name[32];          /* train-00000.npy */
    int split;              /* SHARD_TRAIN / SHARD_VALIDATION */
    uint64_t samples;
    char sha256[65];        /* of the whole file, lower-case hex */
} shard_entry;

typedef struct {
    uint64_t documents, tokens, samples, train_samples, validation_samples, dropped_tail_tokens;
} shard_totals;

typedef struct {
    uint32_t seq_len, vocab_size;
    char vocab_sha256[65];
    uint64_t shard_samples;     /* most samples in one shard */
    uint64_t seed, val_requested;
    shard_entry *shards; size_t nshards, cap;
    shard_totals t;
    char **sources; size_t nsources;   /* merge: the folders merged, in order */
} shard_manifest;

/* Writes DIR/manifest.json atomically. */
int shard_manifest_write(const char *dir, const shard_manifest *m, char *err, size_t errlen);
/* Parses manifest text (n bytes).  Checks format and version, field types,
 * shard names and splits; unknown fields are ignored.  On error the manifest
 * is left empty (nothing to free). */
int shard_manifest_parse(const char *text, size_t n, shard_manifest *m, char *err, size_t errlen);
/* Reads and parses DIR/manifest.json. */
int shard_manifest_read(const char *dir, shard_manifest *m, char *err, size_t errlen);
/* Appends a shard entry; returns 0 or -1 (out of memory). */
int shard_manifest_add(shard_manifest *m, const shard_entry *e);
void shard_manifest_free(shard_manifest *m);

/* ---- the packer ---- */

typedef struct {
    const char *dir;
    uint32_t seq_len;           /* 0: 512 */
    uint64_t shard_samples;     /* 0: 65,536 */
    uint64_t val_samples;
    uint64_t seed;
    int force;                  /* replace a folder that holds shards */
    int link;                   /* merge: hard-link the input shards instead of copying them */
    uint32_t vocab_size;        /* from the token stream header; 1..65536 */
    unsigned char vocab_sha256[32];
} shard_opts;

typedef struct shard_packer shard_packer;
/* Creates DIR if needed.  A folder that already holds a manifest.json or
 * shard files is refused unless force; with force they are removed first
 * (the manifest before anything else).  Leftovers of a killed run (hidden
 * pending and temporary files) are removed. */
shard_packer *shard_packer_open(const shard_opts *o, char *err, size_t errlen);
/* One document's ids (vocab-checked by the caller's token stream reader;
 * checked again here).  Returns 0 or -1 (see shard_packer_error). */
int shard_packer_doc(shard_packer *p, const uint16_t *ids, uint32_t n);
/* A whole sample of seq_len ids (merge).  forced_validation: the sample is
 * validation already and does not take part in the reservoir draw. */
int shard_packer_sample(shard_packer *p, const uint16_t *ids, int forced_validation);
/* Adds documents and dropped tail tokens counted elsewhere (merge). */
void shard_packer_count(shard_packer *p, uint64_t documents, uint64_t dropped_tail_tokens);
/* Drops the partial tail, writes the reservoir as validation shards, gives
 * every shard its final name and writes the manifest.  *out (optional)
 * receives a copy of the manifest (free with shard_manifest_free).  Fails
 * when no complete sample was read, or when validation took every sample. */
int shard_packer_finish(shard_packer *p, shard_manifest *out);
const char *shard_packer_error(const shard_packer *p);
/* Frees.  If finish did not succeed, removes every file this run wrote. */
void shard_packer_close(shard_packer *p);

/* ---- reading a shard folder ---- */

typedef struct shard_set shard_set;
/* Reads the manifest and maps every shard; checks each shard's shape
 * against the manifest (not its sha256: see shard_verify). */
shard_set *shard_set_open(const char *dir, char *err, size_t errlen);
const shard_manifest *shard_set_manifest(const shard_set *s);
uint64_t shard_set_count(const shard_set *s, int split);
/* Sample i of a split (seq_len ids), or NULL when out of range.  If where
 * is given, it receives "train-00001.npy row 17". */
const uint16_t *shard_set_sample(const shard_set *s, int split, uint64_t i, char *where, size_t wlen);
/* The mapped shard k of the manifest's list. */
const shard_npy *shard_set_shard(const shard_set *s, size_t k);
void shard_set_close(shard_set *s);

/* ---- verify ---- */

/* Checks a folder: manifest valid; every shard present, its header a
 * (samples, seq_len) '<u2' array, its size exact, its sha256 as recorded,
 * every id < vocab_size; shard numbering contiguous; totals consistent
 * (per split, samples = train + validation, tokens = samples x seq_len +
 * dropped tail); documents no more than the [CLS] ids in the shards plus
 * what the dropped tails can hold; dropped tails shorter than seq_len per
 * packed stream; no shard longer than shard_samples; validation samples as
 * requested (a merge: at least); no shard-named file that the manifest does
 * not list; and, if vocab_sha256 is given, the vocab the same.  Each problem is passed to
 * report (one line) and counted; returns the number of problems (0: ok). */
typedef void (*shard_report_fn)(void *ctx, const char *line);
long shard_verify(const char *dir, const unsigned char *vocab_sha256, uint32_t cls_id, shard_report_fn report, void *ctx);

/* ---- merge ---- */

/* Packs the samples of several shard folders into one (o->dir): every
 * folder's train samples in order, then validation; its validation samples
 * stay validation, and o->val_samples more are drawn from the merged train
 * samples by the reservoir.  The folders must share seq_len and vocab; each
 * input shard's sha256 is checked as it is read.  Totals add up
 * (documents, tokens, dropped tails).  o->vocab_* are taken from the inputs.
 * With o->link, nothing is copied: each input shard is hard-linked into the
 * output under its new name (same file system; the inputs stay valid; the
 * shards keep their sizes, so all but the last of a split may be short) and
 * o->val_samples must be 0.  Input shards are then checked for shape only. */
int shard_merge(const shard_opts *o, const char *const *dirs, size_t ndirs, shard_manifest *out,
                char *err, size_t errlen);

/* The reservoir's draw for sample i >= val_samples: a slot < val_samples
 * to replace, or val_samples when sample i goes to train.  Exposed for tests. */
uint64_t shard_reservoir_slot(uint64_t seed, uint64_t i, uint64_t val_samples);
#endif
