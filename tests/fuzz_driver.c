/* fuzz_driver.c - runs a libFuzzer target without libFuzzer.
 *
 * Linked with every fuzz target in ordinary builds (gcc, ASan/UBSan, CI):
 * replays each file of the corpus folder named by argv[1], $FUZZ_CORPUS or
 * $ROOT/tests/corpus/NAME for a target fuzz_NAME,
 * then FUZZ_ITERS (default 2000) inputs from a seeded generator that mutates
 * corpus entries.  A crash or sanitizer report fails the test, and so does a
 * corpus folder that is missing, unreadable or empty (a target that replays
 * nothing proves little); passing prints one PASS line.  `make fuzz` builds
 * the same targets with clang's libFuzzer. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("FUZZ_CORPUS");
    char defdir[4096];
    if (!dir && getenv("ROOT")) {   /* fuzz_NAME replays $ROOT/tests/corpus/NAME */
        const char *base = strrchr(argv[0], '/'); base = base ? base + 1 : argv[0];
        if (!strncmp(base, "fuzz_", 5)) base += 5;
        snprintf(defdir, sizeof defdir, "%s/tests/corpus/%s", getenv("ROOT"), base);
        dir = defdir;
    }
    long iters = getenv("FUZZ_ITERS") ? atol(getenv("FUZZ_ITERS")) : 2000;
    uint8_t *corp[512]; size_t clen[512]; int nc = 0;
    if (!dir) { printf("FAIL fuzz %s: no corpus folder (argument, $FUZZ_CORPUS or $ROOT)\n", argv[0]); return 1; }
    DIR *d = opendir(dir);
    if (!d) { printf("FAIL fuzz %s: corpus folder %s: %s\n", argv[0], dir, strerror(errno)); return 1; }
    struct dirent *e;
    while ((e = readdir(d)) && nc < 512) {
        if (e->d_name[0] == '.') continue;
        char path[8192]; snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) { printf("FAIL fuzz %s: %s: %s\n", argv[0], path, strerror(errno)); closedir(d); return 1; }
        fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
        if (n < 0 || n > (1 << 20)) { fclose(f); continue; }
        corp[nc] = malloc(n ? n : 1); clen[nc] = fread(corp[nc], 1, n, f); fclose(f);
        LLVMFuzzerTestOneInput(corp[nc], clen[nc]); nc++;
    }
    closedir(d);
    if (!nc) { printf("FAIL fuzz %s: corpus folder %s holds no input of at most 1 MiB\n", argv[0], dir); return 1; }
    uint8_t buf[4096];
    for (long i = 0; i < iters; i++) {
        size_t n;
        if (next() & 3) {                 /* mutate a corpus entry (nc > 0: checked above) */
            int k = next() % nc; n = clen[k] < sizeof buf ? clen[k] : sizeof buf;
            memcpy(buf, corp[k], n);
            int muts = 1 + next() % 8;
            for (int m = 0; m < muts && n; m++) {
                size_t at = next() % n;
                switch (next() % 4) {
                case 0: buf[at] = (uint8_t)next(); break;
                case 1: buf[at] ^= 1u << (next() % 8); break;
                case 2: n = at; break;                       /* truncate */
                case 3: buf[at] = "\"\\{}[],:\n\x80\xff\xc3\xe2\xf0 "[next() % 16]; break;
                }
            }
        } else {                            /* random bytes, biased towards text */
            n = next() % 256;
            for (size_t j = 0; j < n; j++) { uint64_t r = next(); buf[j] = (r & 1) ? (uint8_t)(r >> 8) : (uint8_t)(' ' + (r >> 8) % 95); }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    for (int k = 0; k < nc; k++) free(corp[k]);
    printf("PASS fuzz %s (%d corpus files, %ld generated inputs)\n", argv[0], nc, iters);
    return 0;
}
