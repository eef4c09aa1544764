/* run.h - wp_run: files of documents in, token ids out, on N threads, with
 * the output of -j N byte for byte that of -j 1.  bin/wordpiece is flags
 * around this call; a test or another tool links it the same way.
 *
 * The caller's thread reads lines (pipeline/sio: files or stdin, zstd
 * detected) into chunks of about 1 MB; worker threads parse and tokenise
 * whole chunks into formatted output; the caller's thread writes the chunks
 * in the order they were read.  At most 2N+2 chunks are in flight: memory
 * depends on N and on the longest document, not on the number of documents.
 *
 * In JSON Lines mode the begin and end records of pipeline/frame.h are
 * recognised on every input (never tokenised): an input that shows a begin
 * record and ends without its end record is an error, as its writer died.
 * In bin mode the output is the token stream of pipeline/tokstream.h: its
 * header first and, only when every input ended cleanly and every line was
 * tokenised, its trailer last, so that a reader can tell a cut stream. */
#ifndef SYMBERT_WP_RUN_H
#define SYMBERT_WP_RUN_H
#include "tokenizer/wordpiece.h"
#include "pipeline/json.h"
#include "pipeline/tokstream.h"
#include <stdint.h>

typedef struct { uint64_t docs, tokens, bytes_in; } wp_run_stats;

typedef struct {
    int jsonl;              /* 1: one JSON object a line, the document at path; 0: each line a document */
    js_path path;
    int bin;                /* 1: the token stream (header, records, trailer); 0: ids as text, a line each */
    ts_header header;       /* bin: the vocab it names */
    int threads;            /* worker threads; 0 or 1 tokenises in the caller's thread */
    /* the output: returns 0, or -1 with a one-line message in err */
    int (*write)(void *ud, const void *buf, size_t n, char *err, size_t errlen);
    /* optional: called after each chunk was written, with the totals so far */
    void (*progress)(void *ud, const wp_run_stats *st);
    void *ud;
} wp_run_opts;

/* Tokenises each path in turn ("-" is stdin; npaths 0 reads stdin) and
 * writes through o->write; *st receives the totals of what was written.
 * Returns 0, or -1 with a message naming the file and line (bad JSON, a
 * missing field, a bad or missing stream record) or byte offset (unreadable
 * or truncated input); the documents before the bad line have been written,
 * the trailer has not. */
int wp_run(const wp_tokenizer *tok, const char *const *paths, int npaths, const wp_run_opts *o,
           wp_run_stats *st, char *err, size_t errlen);
#endif
