/* sio.h - streaming input for every tool: plain or zstd, files or stdin, lines
 * of any length, in bounded memory.
 *
 * A reader is opened on one path ("-" or NULL is standard input).  The first
 * bytes decide the format: the zstd frame magic 28 B5 2F FD means zstd (any
 * number of concatenated frames, skippable frames too), anything else is read
 * as is.  Errors are values: every call returns <0 on error and leaves a
 * one-line message, naming the file and the byte offset, in sio_error(). */
#ifndef SYMBERT_SIO_H
#define SYMBERT_SIO_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sio sio;

/* Opens path ("-" or NULL: stdin).  Returns NULL and writes a message to
 * err (errlen bytes) when the file cannot be opened. */
sio *sio_open(const char *path, char *err, size_t errlen);
/* The same, for a tool that stops on a signal: while *cancel is 0 reads go
 * on; once a signal handler has set it, the next read (within a second,
 * also while the input is an idle pipe) fails with "interrupted". */
sio *sio_open_cancellable(const char *path, const volatile sig_atomic_t *cancel, char *err, size_t errlen);
/* Reads up to n decompressed bytes; returns the count, 0 at the end, <0 on
 * error (truncated or corrupt zstd, read error). */
long sio_read(sio *r, void *buf, size_t n);
/* Next line without its '\n' (a final line without '\n' counts too).
 * *line stays valid until the next call; the line is also NUL-terminated.
 * Returns 1 for a line, 0 at the end, <0 on error. */
int sio_getline(sio *r, const char **line, size_t *len);
/* Line number (1-based) of the line last returned by sio_getline. */
uint64_t sio_lineno(const sio *r);
/* Bytes consumed from the underlying file so far (compressed bytes for zstd). */
uint64_t sio_offset_in(const sio *r);
/* Decompressed bytes delivered so far. */
uint64_t sio_offset_out(const sio *r);
int sio_is_zstd(const sio *r);
const char *sio_name(const sio *r);
const char *sio_error(const sio *r);
void sio_close(sio *r);

/* Output: plain or zstd (level, worker threads) to a file descriptor. */
typedef struct sout sout;
/* level 0 = plain; level >= 1 = zstd at that level with `threads` workers. */
sout *sout_fd(int fd, const char *name, int level, int threads, char *err, size_t errlen);
int sout_write(sout *w, const void *buf, size_t n);
/* Flushes (ends the zstd frame); does not close fd.  Returns <0 on error. */
int sout_finish(sout *w);
const char *sout_error(const sout *w);
void sout_free(sout *w);

/* Memory for a large buffer: from 2 MiB up, 2 MiB-aligned and marked
 * MADV_HUGEPAGE, so that it faults in 2 MiB at a time instead of 4 KiB
 * (page faults are costly, much more so in a VM); smaller, plain malloc.
 * NULL when out of memory; free() releases it.  Used for zstd's buffers
 * here and for oscar-filter's block ring. */
void *sio_big_alloc(size_t n);
#endif
