/* fetch.h - verified, resumable, parallel HTTP downloads (library `fetch`).
 *
 * oscar-fetch needs three things from the network: the OSCAR-2301 parts
 * (hundreds of ~1 GB files behind a gated Hugging Face repository that
 * redirects to a CDN), the UT1 blocklist archive, and the BERT vocab.  All
 * three go through one engine built on the libcurl multi interface:
 *
 *   - each file is written to "<final>.part" and renamed to its final name
 *     only after its sha256 matches the expected one, so a file under its
 *     final name is always a verified file;
 *   - a .part left by an earlier run is resumed with an HTTP Range request;
 *     its existing bytes are hashed (in a helper thread, while the rest
 *     arrives); a server that ignores Range (200 instead of 206) restarts
 *     the file, and a stale .part that fails verification is fetched again
 *     from scratch, once;
 *   - transient failures (timeouts, resets, cut bodies, stalls below a
 *     low-speed limit, 408/429/5xx) are retried with exponential back-off and
 *     jitter; Retry-After is honoured; the count of attempts in a row that
 *     make no progress is bounded;
 *   - redirects are followed by the engine itself, not by libcurl, so that
 *     the token (Authorization: Bearer) is only ever sent to the origin
 *     (scheme, host, port) that the job's first URL names: the CDN never
 *     sees it;
 *   - file downloads are written, hashed and flushed to disk by helper
 *     threads (a writer fed by a ring of 1 MiB buffers, a hasher reading the
 *     .part back from the page cache, a flusher calling fdatasync every
 *     32 MiB), so that neither the sha256 nor the disk stalls the socket and
 *     the final fdatasync before the rename has little left to do.
 *
 * The library never prints: it reports through fetch_event callbacks and
 * returns results in each fetch_job.  Helpers for the CLI and its tests
 * (part ranges, checksum files, back-off, Retry-After, Content-Range, token
 * lookup, archive path safety, UT1 unpacking) are declared below too. */
#ifndef SYMBERT_FETCH_H
#define SYMBERT_FETCH_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- part lists: "1-300", "1,5,7-9" ------------------------------------ */
#define FETCH_MAX_PART 100000
/* Parses spec into a sorted list without duplicates (malloc'ed into *out,
 * count in *n).  Returns 0, or -1 with a message naming the bad piece. */
int fetch_parse_parts(const char *spec, int **out, size_t *n, char *err, size_t errlen);

/* ---- checksum.sha256 (sha256sum format: "<hex>  <name>" or "<hex> *<name>") */
typedef struct fetch_sums { size_t n; char (*hex)[65]; char **name; } fetch_sums;
/* Parses a whole checksum file held in memory; `what` names it in errors
 * ("checksum.sha256 line 7: ...").  Blank lines are allowed; any other line
 * that is not a checksum line is an error.  Returns 0 or -1. */
int fetch_sums_parse(fetch_sums *s, const char *buf, size_t len, const char *what, char *err, size_t errlen);
/* Expected hex digest of a file name (a leading "./" on either side is
 * ignored), or NULL. */
const char *fetch_sums_find(const fetch_sums *s, const char *name);
void fetch_sums_free(fetch_sums *s);

/* ---- retries ------------------------------------------------------------ */
/* Delay before retry number `attempt` (1 = the first retry): base*2^(attempt-1)
 * capped at cap_ms, then "equal jitter": half of it fixed, half scaled by
 * r in [0, 2^32).  Always >= 1 ms when base_ms > 0. */
long fetch_backoff_ms(int attempt, long base_ms, long cap_ms, uint32_t r);
/* Value of a Retry-After header (delta-seconds or an HTTP date) as a delay
 * in ms from `now`; a date in the past gives 0; capped at cap_ms.
 * Returns -1 when the value is not valid. */
long fetch_retry_after_ms(const char *value, time_t now, long cap_ms);
/* Parses a Content-Range value "bytes FIRST-LAST/TOTAL" (TOTAL may be '*',
 * then *total is UINT64_MAX).  Returns 0 or -1. */
int fetch_parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total);

/* What to do with a response body when `have` bytes are already stored and
 * a Range from `have` was asked (have == 0: no Range). */
enum fetch_range_action {
    FETCH_APPEND,    /* the body continues the stored bytes */
    FETCH_RESTART,   /* the body is the whole file: drop the stored bytes */
    FETCH_SKIP,      /* the body is the whole file, stored bytes can't be dropped
                        (a stream already written out): discard the first *skip bytes */
    FETCH_BAD_RANGE  /* a 206 that doesn't start where asked: retry from 0 */
};
/* code: the HTTP status (200 or 206); cr_first: Content-Range start (206
 * only, has_cr says whether the header was there); can_truncate: whether
 * stored bytes may be dropped (a .part file: yes; stdout: no). */
enum fetch_range_action fetch_range_plan(uint64_t have, long code, int has_cr, uint64_t cr_first,
                                         int can_truncate, uint64_t *skip);

/* ---- hosts and tokens --------------------------------------------------- */
/* 1 when both absolute URLs have the same scheme, host and port (default
 * ports filled in, host compared without case), 0 otherwise (also when
 * either does not parse). */
int fetch_same_origin(const char *url_a, const char *url_b);
/* The Hugging Face token: $HF_TOKEN, else the file $HF_TOKEN_PATH, else
 * $HF_HOME/token, else ${XDG_CACHE_HOME:-$HOME/.cache}/huggingface/token;
 * surrounding white space is trimmed.  Writes where it came from (never the
 * token) into `from`.  Returns 1 when found, 0 when there is none, -1 with a
 * message when a token file exists but can't be read or is malformed. */
int fetch_token_find(char *tok, size_t toklen, char *from, size_t fromlen, char *err, size_t errlen);

/* ---- the download engine ------------------------------------------------ */
enum fetch_status {
    FETCH_PENDING = 0,
    FETCH_OK,          /* downloaded and verified (or no sha256 to check) */
    FETCH_SKIPPED,     /* the final file was already there (verified again with verify_existing) */
    FETCH_E_AUTH,      /* 401/403 */
    FETCH_E_NOTFOUND,  /* 404/410 */
    FETCH_E_HTTP,      /* another HTTP status that retrying won't fix */
    FETCH_E_RETRIES,   /* transient failures, attempts used up */
    FETCH_E_CHECKSUM,  /* sha256 mismatch; nothing was kept */
    FETCH_E_IO,        /* local file or stdout error */
    FETCH_E_CANCELLED  /* stopped by the caller or by a fatal error elsewhere */
};

enum fetch_phase { FETCH_PH_QUEUED, FETCH_PH_TRANSFER, FETCH_PH_WAIT, FETCH_PH_VERIFY, FETCH_PH_END };

typedef struct fetch_job {
    /* in */
    const char *url;        /* first URL; the token goes only to its origin */
    const char *path;       /* final file; ".part" is appended while in flight.
                               NULL for fetch_stream (the sink is a fd) */
    const char *name;       /* short name for events and messages */
    char sha256[65];        /* expected lower-case hex, or "" for none */
    /* progress (read them from the event callback) */
    uint64_t have;          /* bytes stored (or streamed) so far */
    uint64_t total;         /* size when known, else 0 */
    int phase;              /* FETCH_PH_*: what the job is doing now */
    int attempts;           /* requests made so far */
    /* out */
    enum fetch_status status;
    long http_code;         /* last HTTP status seen */
    int resumed;            /* 1 when bytes from an earlier run were reused */
    char got_sha256[65];    /* digest of what was received (OK, CHECKSUM) */
    char err[512];          /* one line for a failure */
} fetch_job;

enum fetch_event_kind {
    FETCH_EV_START,    /* job starts (first request, or verification of an existing file) */
    FETCH_EV_RETRY,    /* a retry is scheduled: msg says why, delay_ms when */
    FETCH_EV_NOTE,     /* something worth a line: Range ignored, stale .part dropped... */
    FETCH_EV_DONE,     /* job finished, see job->status */
    FETCH_EV_TICK      /* periodic (about 4 per second) while anything runs */
};
typedef struct fetch_event {
    enum fetch_event_kind kind;
    fetch_job *job;         /* NULL for TICK */
    const fetch_job *jobs;  /* every job, for progress displays */
    size_t njobs;
    long delay_ms;          /* RETRY */
    int attempt;            /* RETRY: retry number in the current run of failures */
    const char *msg;        /* RETRY, NOTE */
} fetch_event;

typedef struct fetch_opts {
    int parallel;             /* transfers at once, >= 1 (default 4) */
    int retries;              /* retries in a row without progress (default 8) */
    long retry_base_ms;       /* first back-off (default 1000) */
    long retry_cap_ms;        /* longest back-off (default 60000) */
    long retry_after_cap_ms;  /* longest Retry-After honoured (default 600000) */
    long stall_secs;          /* abort a transfer slower than stall_bytes/s for this long (default 60) */
    long stall_bytes;         /* (default 1024) */
    long connect_timeout_s;   /* (default 30) */
    int max_redirects;        /* (default 10) */
    int verify_existing;      /* hash existing final files instead of trusting them */
    const char *token;        /* bearer token or NULL; never copied into messages */
    const char *user_agent;
    uint32_t seed;            /* jitter seed; 0: from time and pid */
    volatile int *cancel;     /* when it becomes non-zero: stop, keep .part files */
    void (*on_event)(const fetch_event *ev, void *ctx);
    void *ctx;
} fetch_opts;

/* Defaults as documented above. */
void fetch_opts_init(fetch_opts *o);
/* libcurl global init/cleanup, once per program. Returns 0 or -1. */
int fetch_global_init(char *err, size_t errlen);
void fetch_global_cleanup(void);

/* Downloads every job to its path, opts->parallel at a time.  An existing
 * final file is skipped (FETCH_SKIPPED).  401/403 on any job stops all of
 * them (the others end FETCH_E_CANCELLED, their .part files kept).
 * Returns 0 when every job ended OK or SKIPPED, else -1 (each job says why;
 * err gets the first failure). */
int fetch_files(const fetch_opts *o, fetch_job *jobs, size_t n, char *err, size_t errlen);

/* Streams the jobs, in order, one at a time, to fd, hashing as it goes; a
 * retry resumes with Range from the bytes already written (skipping them
 * when the server ignores Range).  Stops at the first failure: a checksum
 * mismatch is found only after the whole part was written out, so err says
 * how many bytes of the output came from verified parts.  Returns 0 or -1. */
int fetch_stream(const fetch_opts *o, fetch_job *jobs, size_t n, int fd, char *err, size_t errlen);

/* One small file (a checksum list) into memory, at most max bytes
 * (malloc'ed, NUL-terminated).  Uses the same retries, redirects and token
 * rules; job (optional) receives status and http_code.  Returns 0 or -1. */
int fetch_memory(const fetch_opts *o, const char *url, const char *name, size_t max,
                 char **out, size_t *len, fetch_job *job, char *err, size_t errlen);

/* ---- unpacking (UT1) ---------------------------------------------------- */
/* Makes an archive entry name relative and clean: drops "./" and empty
 * components, and a leading component equal to strip_top (may be NULL).
 * Refuses (-1 and a message) absolute names, ".." components and names
 * that become empty.  Returns 0, or 1 when the entry is the stripped top
 * folder itself (nothing to create). */
int fetch_entry_path(const char *name, const char *strip_top, char *out, size_t outlen,
                     char *err, size_t errlen);
/* 1 when a symbolic link stored at the clean relative path `at` with target
 * `target` resolves, lexically, to somewhere inside the folder (never above
 * it at any step); 0 otherwise (absolute targets are refused). */
int fetch_link_inside(const char *at, const char *target);

/* Unpacks a .tar/.tar.gz/... archive (libarchive) into dir: regular files,
 * folders and symbolic links that stay inside; a leading folder named
 * strip_top is dropped (UT1's "blacklists/").  Names are walked with
 * O_NOFOLLOW, so no entry is ever written through a link.  Refuses the
 * whole archive on the first unsafe or unsupported entry (-1 and a message
 * naming it; what was written so far stays in dir, which the caller
 * creates fresh and removes on failure).  *files gets the count of regular
 * files written. */
int fetch_unpack(const char *archive, const char *dir, const char *strip_top, size_t *files,
                 char *err, size_t errlen);
/* rm -r of a path that we created (does not follow links).  0 or -1. */
int fetch_remove_tree(const char *path);
/* Moves every entry of folder `from` into folder `to` (same file system),
 * replacing entries of the same name (the old ones are removed).  0 or -1. */
int fetch_install_tree(const char *from, const char *to, char *err, size_t errlen);
#endif
