/* fetch_unpack.c - unpacking a downloaded archive (the UT1 blocklist) without
 * trusting its names.
 *
 * libarchive only reads the archive here; the files are created by this
 * code, relative to a folder descriptor, one path component at a time with
 * O_NOFOLLOW.  So an entry can never be written through a symbolic link
 * (not even one the archive itself created), absolute names and ".." are
 * refused before anything is touched, and a link is created only when its
 * target stays inside the folder.  Modes and owners from the archive are
 * ignored (0644 files, 0755 folders). */
#include "pipeline/fetch.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens the folder that holds the last component of rel (creating the
 * folders on the way when create is set) and points *base at that last
 * component.  Returns a descriptor or -1 with errno. */
static int open_parent(int root, char *rel, int create, char **base) {
    int dfd = dup(root);
    if (dfd < 0) return -1;
    char *p = rel;
    for (;;) {
        char *slash = strchr(p, '/');
        if (!slash) { *base = p; return dfd; }
        *slash = 0;
        if (create && mkdirat(dfd, p, 0755) < 0 && errno != EEXIST) { int e = errno; *slash = '/'; close(dfd); errno = e; return -1; }
        int nfd = openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        *slash = '/';
        close(dfd);
        if (nfd < 0) { errno = e; return -1; }
        dfd = nfd;
        p = slash + 1;
    }
}

static const char *walk_error(int e) {
    return e == ELOOP || e == ENOTDIR ? "its path goes through a link or a file" : strerror(e);
}

static int write_entry_data(struct archive *a, int fd, char *err, size_t errlen, const char *what) {
    const void *buf;
    size_t size;
    la_int64_t off;
    uint64_t at = 0;
    for (;;) {
        int r = archive_read_data_block(a, &buf, &size, &off);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) { snprintf(err, errlen, "%s: %s", what, archive_error_string(a)); return -1; }
        if ((uint64_t)off > at) at = (uint64_t)off;   /* sparse entries: leave a hole */
        const char *p = buf;
        while (size) {
            ssize_t k = pwrite(fd, p, size, (off_t)at);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) { snprintf(err, errlen, "%s: write error: %s", what, strerror(errno)); return -1; }
            p += k; size -= (size_t)k; at += (uint64_t)k;
        }
    }
    if (ftruncate(fd, (off_t)at) < 0) { snprintf(err, errlen, "%s: %s", what, strerror(errno)); return -1; }
    return 0;
}

int fetch_unpack(const char *archive, const char *dir, const char *strip_top, size_t *files,
                 char *err, size_t errlen) {
    *files = 0;
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) { snprintf(err, errlen, "%s: %s", dir, strerror(errno)); return -1; }
    struct archive *a = archive_read_new();
    if (!a) { close(root); snprintf(err, errlen, "out of memory"); return -1; }
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    int rc = -1;
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", archive, archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *ent;
        int r = archive_read_next_header(a, &ent);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) { snprintf(err, errlen, "%s: %s", archive, archive_error_string(a)); goto out; }
        const char *name = archive_entry_pathname(ent);
        if (!name) name = archive_entry_pathname_utf8(ent);
        if (!name) { snprintf(err, errlen, "%s: an entry has a name that can't be read", archive); goto out; }
        char rel[4096], msg[4400];
        int pr = fetch_entry_path(name, strip_top, rel, sizeof rel, msg, sizeof msg);
        if (pr < 0) { snprintf(err, errlen, "%s: refused: %s", archive, msg); goto out; }
        mode_t type = archive_entry_filetype(ent);
        const char *hard = archive_entry_hardlink(ent);
        if (pr == 1) {                                 /* the stripped top folder itself */
            if (type == AE_IFDIR) continue;
            snprintf(err, errlen, "%s: refused: entry '%s' is not a folder", archive, name);
            goto out;
        }
        char *base;
        int dfd = open_parent(root, rel, 1, &base);
        if (dfd < 0) { snprintf(err, errlen, "%s: entry '%s': %s", archive, name, walk_error(errno)); goto out; }
        int bad = 0;
        if (hard) {
            char trel[4096], *tbase;
            if (fetch_entry_path(hard, strip_top, trel, sizeof trel, msg, sizeof msg) != 0) {
                snprintf(err, errlen, "%s: refused: hard link '%s' to '%s': %s", archive, name, hard, msg);
                bad = 1;
            } else {
                int tfd = open_parent(root, trel, 0, &tbase);
                struct stat st;
                if (tfd < 0 || fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
                    snprintf(err, errlen, "%s: refused: hard link '%s' to '%s', which is not a file unpacked before it",
                             archive, name, hard);
                    bad = 1;
                } else {
                    unlinkat(dfd, base, 0);
                    if (linkat(tfd, tbase, dfd, base, 0) < 0) {
                        snprintf(err, errlen, "%s: entry '%s': %s", archive, name, strerror(errno));
                        bad = 1;
                    } else {
                        (*files)++;
                    }
                }
                if (tfd >= 0) close(tfd);
            }
        } else if (type == AE_IFDIR) {
            struct stat st;
            if (mkdirat(dfd, base, 0755) < 0 && !(errno == EEXIST && fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0
                                                   && S_ISDIR(st.st_mode))) {
                snprintf(err, errlen, "%s: entry '%s': %s", archive, name,
                         errno == EEXIST ? "exists and is not a folder" : strerror(errno));
                bad = 1;
            }
        } else if (type == AE_IFREG) {
            int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (fd < 0) {
                snprintf(err, errlen, "%s: entry '%s': %s", archive, name, walk_error(errno));
                bad = 1;
            } else {
                snprintf(msg, sizeof msg, "%s: entry '%s'", archive, name);
                if (write_entry_data(a, fd, err, errlen, msg) < 0) bad = 1;
                if (close(fd) < 0 && !bad) { snprintf(err, errlen, "%s: close: %s", msg, strerror(errno)); bad = 1; }
                if (!bad) (*files)++;
            }
        } else if (type == AE_IFLNK) {
            const char *target = archive_entry_symlink(ent);
            if (!target || !fetch_link_inside(rel, target)) {
                snprintf(err, errlen, "%s: refused: link '%s' -> '%s' leaves the folder", archive, name, target ? target : "");
                bad = 1;
            } else {
                struct stat st;
                if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) unlinkat(dfd, base, 0);
                if (symlinkat(target, dfd, base) < 0) {
                    snprintf(err, errlen, "%s: entry '%s': %s", archive, name, strerror(errno));
                    bad = 1;
                }
            }
        } else {
            snprintf(err, errlen, "%s: refused: entry '%s' is not a file, folder or link", archive, name);
            bad = 1;
        }
        close(dfd);
        if (bad) goto out;
    }
    rc = 0;
out:
    archive_read_free(a);
    close(root);
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st; (void)f;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int fetch_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fetch_install_tree(const char *from, const char *to, char *err, size_t errlen) {
    DIR *d = opendir(from);
    if (!d) { snprintf(err, errlen, "%s: %s", from, strerror(errno)); return -1; }
    char old[4200];
    snprintf(old, sizeof old, "%s/.old.%ld", from, (long)getpid());
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))) continue;
        if (!strncmp(de->d_name, ".old.", 5)) continue;
        char src[8800], dst[8800], aside[8800];
        snprintf(src, sizeof src, "%s/%s", from, de->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, de->d_name);
        snprintf(aside, sizeof aside, "%s/%s", old, de->d_name);
        struct stat st;
        if (lstat(dst, &st) == 0) {
            if (mkdir(old, 0700) < 0 && errno != EEXIST) { snprintf(err, errlen, "%s: %s", old, strerror(errno)); rc = -1; break; }
            if (rename(dst, aside) < 0) { snprintf(err, errlen, "%s: cannot move aside: %s", dst, strerror(errno)); rc = -1; break; }
        }
        if (rename(src, dst) < 0) { snprintf(err, errlen, "%s: cannot rename to %s: %s", src, dst, strerror(errno)); rc = -1; break; }
    }
    closedir(d);
    fetch_remove_tree(old);
    if (rc == 0) {
        int fd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) { fsync(fd); close(fd); }
    }
    return rc;
}
