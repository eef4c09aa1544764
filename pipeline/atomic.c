/* atomic.c - see atomic.h. */
#include "pipeline/atomic.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIG_FILES 4
static afile *volatile sig_files[SIG_FILES];

static void remove_and_die(int sig) {
    for (int i = 0; i < SIG_FILES; i++) {
        afile *f = sig_files[i];
        if (f && !f->direct && f->tmp[0]) unlink(f->tmp);      /* async-signal-safe */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void forget(afile *f) {
    for (int i = 0; i < SIG_FILES; i++) if (sig_files[i] == f) sig_files[i] = NULL;
}

void afile_remove_on_signal(afile *f) {
    int i = 0;
    while (i < SIG_FILES - 1 && sig_files[i] && sig_files[i] != f) i++;
    sig_files[i] = f;
    struct sigaction sa; memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_and_die;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT); sigaddset(&sa.sa_mask, SIGTERM); sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGINT, &sa, NULL); sigaction(SIGTERM, &sa, NULL); sigaction(SIGHUP, &sa, NULL);
}

int afile_open(afile *f, const char *path, char *err, size_t errlen) {
    if (strlen(path) >= sizeof f->path) { snprintf(err, errlen, "%s: path too long", path); return -1; }
    snprintf(f->path, sizeof f->path, "%s", path);
    struct stat st;
    f->direct = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    if (f->direct) {
        if (S_ISDIR(st.st_mode)) { snprintf(err, errlen, "%s: is a folder", path); return -1; }
        f->tmp[0] = 0;
        f->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (f->fd < 0) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return -1; }
        return 0;
    }
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path + 1) : 0;
    snprintf(f->tmp, sizeof f->tmp, "%.*s.%s.tmp.%ld", dlen, path, slash ? slash + 1 : path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) { snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno)); return -1; }
    return 0;
}

int fd_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k; n -= (size_t)k;
    }
    return 0;
}

int afile_write(afile *f, const void *buf, size_t n, char *err, size_t errlen) {
    if (fd_write_all(f->fd, buf, n) < 0) { snprintf(err, errlen, "%s: write error: %s", f->path, strerror(errno)); return -1; }
    return 0;
}

int afile_commit(afile *f, char *err, size_t errlen) {
    if (f->direct) {
        forget(f);
        int rc = close(f->fd); f->fd = -1;
        if (rc < 0) { snprintf(err, errlen, "%s: close: %s", f->path, strerror(errno)); return -1; }
        return 0;
    }
    if (fsync(f->fd) < 0) { snprintf(err, errlen, "%s: fsync: %s", f->path, strerror(errno)); afile_abort(f); return -1; }
    if (close(f->fd) < 0) { f->fd = -1; snprintf(err, errlen, "%s: close: %s", f->path, strerror(errno)); afile_abort(f); return -1; }
    f->fd = -1;
    if (rename(f->tmp, f->path) < 0) { snprintf(err, errlen, "%s: rename: %s", f->path, strerror(errno)); afile_abort(f); return -1; }
    forget(f);
    char dir[4096]; const char *slash = strrchr(f->path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - f->path) ? (int)(slash - f->path) : 1, f->path);
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return 0;
}

void afile_abort(afile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (!f->direct) unlink(f->tmp);
    forget(f);
}

int afile_put(const char *path, const void *buf, size_t n, char *err, size_t errlen) {
    afile f;
    if (afile_open(&f, path, err, errlen) < 0) return -1;
    if (afile_write(&f, buf, n, err, errlen) < 0) { afile_abort(&f); return -1; }
    return afile_commit(&f, err, errlen);
}

int mkdir_p(const char *dir, char *err, size_t errlen) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s; *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST) { snprintf(err, errlen, "%s: cannot create folder: %s", p, strerror(errno)); return -1; }
            *s = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) { snprintf(err, errlen, "%s: not a folder", dir); return -1; }
    return 0;
}
