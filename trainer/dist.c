/* dist.c - who this process is among the ranks (the launcher's
 * environment) and the rendezvous that carries rank 0's bytes (NCCL's
 * unique id) to the others over TCP or a shared file.  See dist.h.
 * This is the front end's helper: the training library itself reads no
 * environment variables. */
#include "trainer/dist.h"
#include "pipeline/atomic.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) { va_list ap; va_start(ap, fmt); vsnprintf(err, errlen, fmt, ap); va_end(ap); }
    return -1;
}

double bt_dist_clock(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap(double s) {
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&t, NULL);
}

/* ------------------------------------------------------------ the environment */

/* A whole number in [lo, hi] from variable `name`; 0 when unset, -1 when malformed. */
static int env_int(const char *name, long lo, long hi, int *out, char *err, size_t errlen) {
    const char *s = getenv(name);
    if (!s) return 0;
    char *end; errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return fail(err, errlen, "%s=%s: expected a whole number in [%ld, %ld]", name, s, lo, hi);
    *out = (int)v;
    return 1;
}

int bt_slurm_first_host(const char *list, char *host, size_t cap) {
    size_t k = 0;
    const char *p = list;
    while (*p && *p != ',' && *p != '[' && k + 1 < cap) host[k++] = *p++;
    if (*p == '[') {   /* prefix[07-09,12]: the first number of the range list */
        p++;
        while (*p >= '0' && *p <= '9' && k + 1 < cap) host[k++] = *p++;
        if (*p != '-' && *p != ',' && *p != ']') return -1;
        while (*p && *p != ']') p++;
        if (*p != ']') return -1;
        for (p++; *p && *p != ',' && k + 1 < cap; ) host[k++] = *p++;
    }
    host[k] = 0;
    return k ? 0 : -1;
}

static int parse_init(bt_dist_env *d, const char *init, char *err, size_t errlen) {
    if (!strncmp(init, "file://", 7)) {
        if (!init[7] || strlen(init + 7) >= sizeof d->file) return fail(err, errlen, "--dist-init %s: expected file:///PATH", init);
        snprintf(d->file, sizeof d->file, "%s", init + 7);
        return 0;
    }
    if (strncmp(init, "tcp://", 6)) return fail(err, errlen, "--dist-init %s: expected tcp://HOST:PORT or file:///PATH", init);
    const char *h = init + 6, *colon = strrchr(h, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == h || (size_t)(colon - h) >= sizeof d->host || !colon[1] || *end || port < 1 || port > 65535)
        return fail(err, errlen, "--dist-init %s: expected tcp://HOST:PORT (PORT in 1..65535)", init);
    snprintf(d->host, sizeof d->host, "%.*s", (int)(colon - h), h);
    d->port = (int)port;
    return 0;
}

int bt_dist_detect(bt_dist_env *d, const char *init, double timeout, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->world = 1;
    d->timeout = timeout > 0 ? timeout : BT_DIST_TIMEOUT;
    static const struct { const char *launcher, *rank, *world, *local; } L[] = {
        { "torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK" },
        { "slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID" },
        { "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK" },
    };
    for (size_t i = 0; i < sizeof L / sizeof L[0] && !d->launcher; i++) {
        int r = 0, w = 0, l = 0;
        int hr = env_int(L[i].rank, 0, 1 << 20, &r, err, errlen), hw = env_int(L[i].world, 1, 1 << 20, &w, err, errlen);
        if (hr < 0 || hw < 0) return -1;
        if (!hr && !hw) continue;
        if (!hr || !hw) return fail(err, errlen, "%s is set but %s is not", hr ? L[i].rank : L[i].world, hr ? L[i].world : L[i].rank);
        if (r >= w) return fail(err, errlen, "%s=%d is not below %s=%d", L[i].rank, r, L[i].world, w);
        int hl = env_int(L[i].local, 0, 1 << 20, &l, err, errlen);
        if (hl < 0) return -1;
        d->launcher = L[i].launcher;
        d->rank = r; d->world = w; d->local_rank = hl ? l : r;
    }
    if (init) return parse_init(d, init, err, errlen) ? -1 : d->launcher != NULL;
    const char *addr = getenv("MASTER_ADDR");
    int port = 0, hp = env_int("MASTER_PORT", 1, 65535, &port, err, errlen);
    if (hp < 0) return -1;
    if (addr && *addr) {
        if (strlen(addr) >= sizeof d->host) return fail(err, errlen, "MASTER_ADDR: too long");
        snprintf(d->host, sizeof d->host, "%s", addr);
        d->port = hp ? port : BT_DIST_PORT;
        /* torchrun's agent serves its own store at MASTER_PORT: meet one port above */
        if (d->launcher && !strcmp(d->launcher, "torchrun")) {
            if (d->port == 65535) return fail(err, errlen, "MASTER_PORT=65535: the rendezvous takes MASTER_PORT + 1 under torchrun");
            d->port++;
        }
    } else if (d->launcher && !strcmp(d->launcher, "slurm") && getenv("SLURM_JOB_NODELIST")) {
        const char *list = getenv("SLURM_JOB_NODELIST");
        if (bt_slurm_first_host(list, d->host, sizeof d->host)) return fail(err, errlen, "SLURM_JOB_NODELIST=%s: cannot read its first host", list);
        d->port = hp ? port : BT_DIST_PORT;
    }
    return d->launcher != NULL;
}

/* ------------------------------------------------------------ rendezvous over TCP */

enum { RDV_MAGIC = 0x53425256, RDV_MAX = 4096 };

/* Reads or writes exactly n bytes before the deadline.  0, or -1 (closed, error, timeout). */
static int xfer(int fd, void *buf, size_t n, int writing, double deadline) {
    char *p = buf;
    while (n) {
        double left = deadline - bt_dist_clock();
        if (left <= 0) return -1;
        struct pollfd pf = { fd, (short)(writing ? POLLOUT : POLLIN), 0 };
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return -1;
        ssize_t k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return -1;
        p += k; n -= (size_t)k;
    }
    return 0;
}

static int tcp_serve(const bt_dist_env *d, const void *buf, size_t len, char *err, size_t errlen) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), v6 = fd >= 0;
    if (fd < 0) fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(err, errlen, "rank 0: socket: %s", strerror(errno));
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {   /* every address, IPv4 included */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        struct sockaddr_in6 a; memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6; a.sin6_addr = in6addr_any; a.sin6_port = htons((uint16_t)d->port);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a; memset(&a, 0, sizeof a);
        a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(INADDR_ANY); a.sin_port = htons((uint16_t)d->port);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc || listen(fd, 128)) {
        int e = errno; close(fd);
        return fail(err, errlen, "rank 0: cannot listen on port %d (%s:%d): %s", d->port, d->host, d->port, strerror(e));
    }
    const double deadline = bt_dist_clock() + d->timeout;
    char *seen = calloc((size_t)d->world, 1);
    if (!seen) { close(fd); return fail(err, errlen, "out of memory"); }
    int arrived = 1;
    rc = 0;
    while (!rc && arrived < d->world) {
        double left = deadline - bt_dist_clock();
        struct pollfd pf = { fd, POLLIN, 0 };
        int pr = left > 0 ? poll(&pf, 1, (int)(left * 1000) + 1) : 0;
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            int miss = 1;
            while (miss < d->world && seen[miss]) miss++;
            rc = fail(err, errlen, "rank 0: rank %d of %d (and %d more) did not arrive at %s:%d within %g s",
                      miss, d->world, d->world - arrived - 1, d->host, d->port, d->timeout);
            break;
        }
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        uint32_t hello[3], reply[3];
        double cd = bt_dist_clock() + 10 < deadline ? bt_dist_clock() + 10 : deadline;   /* a silent connection is not a rank */
        if (xfer(c, hello, sizeof hello, 0, cd) || hello[0] != RDV_MAGIC) { close(c); continue; }
        int r = (int)hello[1];
        reply[0] = RDV_MAGIC; reply[1] = (uint32_t)d->world; reply[2] = (uint32_t)len;
        if ((int)hello[2] != d->world) {
            reply[2] = 0;   /* tells the peer: world sizes differ */
            xfer(c, reply, sizeof reply, 1, cd);
            rc = fail(err, errlen, "rank 0: rank %d at %s:%d says the world has %u ranks, not %d", r, d->host, d->port, hello[2], d->world);
        } else if (r >= 1 && r < d->world && !seen[r]) {
            if (!xfer(c, reply, sizeof reply, 1, cd) && !xfer(c, (void *)buf, len, 1, cd)) { seen[r] = 1; arrived++; }
        }
        close(c);
    }
    free(seen);
    close(fd);
    return rc;
}

static int tcp_fetch(const bt_dist_env *d, void *buf, size_t len, char *err, size_t errlen) {
    char port[16];
    snprintf(port, sizeof port, "%d", d->port);
    const double deadline = bt_dist_clock() + d->timeout;
    const char *why = "no answer";
    while (bt_dist_clock() < deadline) {
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        int g = getaddrinfo(d->host, port, &hints, &ai);
        if (g) {   /* the name may not resolve yet (a node still booting): retry */
            why = gai_strerror(g);
            nap(0.2);
            continue;
        }
        int got = 0, refused_world = 0;
        uint32_t reply[3] = { 0, 0, 0 };
        for (struct addrinfo *a = ai; a && !got && !refused_world; a = a->ai_next) {
            int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (fd < 0) continue;
            if (connect(fd, a->ai_addr, a->ai_addrlen)) { why = strerror(errno); close(fd); continue; }
            uint32_t hello[3] = { RDV_MAGIC, (uint32_t)d->rank, (uint32_t)d->world };
            double cd = bt_dist_clock() + 10 < deadline ? bt_dist_clock() + 10 : deadline;
            if (!xfer(fd, hello, sizeof hello, 1, cd) && !xfer(fd, reply, sizeof reply, 0, cd) && reply[0] == RDV_MAGIC) {
                if (reply[2] == 0) refused_world = 1;
                else if (reply[2] == len && !xfer(fd, buf, len, 0, cd)) got = 1;
                else why = "a malformed answer";
            } else why = "the connection closed without an answer";
            close(fd);
        }
        freeaddrinfo(ai);
        if (got) return 0;
        if (refused_world) return fail(err, errlen, "rank %d: rank 0 at %s:%d has a world of %u ranks, this rank %d", d->rank, d->host, d->port, reply[1], d->world);
        nap(0.1);
    }
    return fail(err, errlen, "rank %d: no answer from rank 0 at %s:%d after %g s (%s)", d->rank, d->host, d->port, d->timeout, why);
}

/* ------------------------------------------------------------ rendezvous through a file */

/* A rank's answer names what it read (FNV-1a 64 of the payload), so that
 * answers left by an earlier run are never taken for this one's. */
static void file_ack_text(const void *buf, size_t len, char out[24]) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) h = (h ^ ((const unsigned char *)buf)[i]) * 1099511628211ull;
    snprintf(out, 24, "%016llx\n", (unsigned long long)h);
}

static int file_acked(const char *ack, const char *want) {
    char got[24] = { 0 };
    FILE *f = fopen(ack, "rb");
    if (!f) return 0;
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    return n == strlen(want) && !memcmp(got, want, n);
}

static int file_publish(const bt_dist_env *d, const void *buf, size_t len, char *err, size_t errlen) {
    struct stat sb;
    if (stat(d->file, &sb) == 0)
        return fail(err, errlen, "rank 0: %s exists (left by an earlier run?); remove it, or name another file", d->file);
    char head[64];
    int hn = snprintf(head, sizeof head, "symbert-rendezvous %d %zu\n", d->world, len);
    char ack[2200], want[24];
    for (int r = 1; r < d->world; r++) { snprintf(ack, sizeof ack, "%s.%d", d->file, r); unlink(ack); }   /* an earlier run's */
    file_ack_text(buf, len, want);
    char *all = malloc((size_t)hn + len);
    if (!all) return fail(err, errlen, "out of memory");
    memcpy(all, head, (size_t)hn); memcpy(all + hn, buf, len);
    int rc = afile_put(d->file, all, (size_t)hn + len, err, errlen);
    free(all);
    if (rc) return -1;
    const double deadline = bt_dist_clock() + d->timeout;
    for (int r = 1; r < d->world && !rc; r++) {
        snprintf(ack, sizeof ack, "%s.%d", d->file, r);
        while (!file_acked(ack, want)) {
            if (bt_dist_clock() > deadline) {
                rc = fail(err, errlen, "rank 0: rank %d of %d did not answer through %s within %g s", r, d->world, d->file, d->timeout);
                break;
            }
            nap(0.05);
        }
    }
    for (int r = 1; r < d->world; r++) { snprintf(ack, sizeof ack, "%s.%d", d->file, r); unlink(ack); }
    unlink(d->file);
    return rc;
}

static int file_fetch(const bt_dist_env *d, void *buf, size_t len, char *err, size_t errlen) {
    const double deadline = bt_dist_clock() + d->timeout;
    char data[RDV_MAX + 128];
    for (;;) {
        FILE *f = fopen(d->file, "rb");
        if (f) {
            size_t n = fread(data, 1, sizeof data - 1, f);
            fclose(f);
            data[n] = 0;
            int w = 0; size_t l = 0, hn = 0;
            char *nl = memchr(data, '\n', n);
            if (!nl || sscanf(data, "symbert-rendezvous %d %zu", &w, &l) != 2)
                return fail(err, errlen, "rank %d: %s is not a rendezvous file", d->rank, d->file);
            hn = (size_t)(nl - data) + 1;
            if (w != d->world) return fail(err, errlen, "rank %d: %s is for a world of %d ranks, this rank %d", d->rank, d->file, w, d->world);
            if (l != len || n != hn + len) return fail(err, errlen, "rank %d: %s: %zu bytes, expected %zu", d->rank, d->file, n - hn, len);
            memcpy(buf, data + hn, len);
            char ack[2200], text[24];
            snprintf(ack, sizeof ack, "%s.%d", d->file, d->rank);
            file_ack_text(buf, len, text);
            return afile_put(ack, text, strlen(text), err, errlen);
        }
        if (bt_dist_clock() > deadline) return fail(err, errlen, "rank %d: rank 0 wrote no %s within %g s", d->rank, d->file, d->timeout);
        nap(0.05);
    }
}

int bt_rendezvous(const bt_dist_env *d, void *buf, size_t len, char *err, size_t errlen) {
    if (len == 0 || len > RDV_MAX) return fail(err, errlen, "rendezvous of %zu bytes (1..%d)", len, RDV_MAX);
    if (d->file[0]) return d->rank == 0 ? file_publish(d, buf, len, err, errlen) : file_fetch(d, buf, len, err, errlen);
    if (!d->host[0] || !d->port)
        return fail(err, errlen, "rank %d of %d: no rendezvous: set MASTER_ADDR and MASTER_PORT, or pass --dist-init tcp://HOST:PORT or file:///PATH", d->rank, d->world);
    return d->rank == 0 ? tcp_serve(d, buf, len, err, errlen) : tcp_fetch(d, buf, len, err, errlen);
}
