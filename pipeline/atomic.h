/* atomic.h - output files that appear whole or not at all.
 *
 * afile_open creates "<dir>/.<name>.tmp.<pid>" beside the final path;
 * afile_commit fsyncs it, renames it over the final path and fsyncs the
 * folder; afile_abort removes it.  A crash in between leaves only a hidden
 * temporary file, never one that looks complete.  A target that exists and
 * is not a regular file (/dev/null, a FIFO, a terminal) is written directly:
 * renaming over it would replace the device. */
#ifndef SYMBERT_ATOMIC_H
#define SYMBERT_ATOMIC_H
#include <stddef.h>
typedef struct afile { int fd, direct; char path[4096]; char tmp[4200]; } afile;
/* Returns 0, or -1 with a message in err. */
int afile_open(afile *f, const char *path, char *err, size_t errlen);
int afile_write(afile *f, const void *buf, size_t n, char *err, size_t errlen);

/* Writes all n bytes to fd (again after EINTR and short writes): 0, or -1
 * with errno set.  Every writer of the pipeline goes through it. */
int fd_write_all(int fd, const void *buf, size_t n);
int afile_commit(afile *f, char *err, size_t errlen);
void afile_abort(afile *f);
/* From now until f is committed or aborted, SIGINT, SIGTERM and SIGHUP
 * remove f's temporary file, then end the process by the same signal (exit
 * status 130, 143, 129 in a shell).  Up to four files at once. */
void afile_remove_on_signal(afile *f);
/* Whole buffer to path, atomically. */
int afile_put(const char *path, const void *buf, size_t n, char *err, size_t errlen);
/* mkdir -p; returns 0 or -1 with message. */
int mkdir_p(const char *dir, char *err, size_t errlen);
#endif
