/* vocab_locate.c - where the tools find the vocab (see vocab.h): --vocab,
 * $SYMBERT_VOCAB, the place `oscar-fetch vocab` fills, then the copy that
 * ships with the tools.  The last step is what makes a bare clone (and an
 * installed copy) work with no download; it is found from the program's own
 * path, so that no source or install folder is compiled into the binaries. */
#include "tokenizer/vocab.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHIPPED_REL "share/symbert/vocab.txt"

int wp_vocab_default_path(char *out, size_t outlen) {
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int k;
    if (x && *x) k = snprintf(out, outlen, "%s/symbert/vocab.txt", x);
    else if (home && *home) k = snprintf(out, outlen, "%s/.local/share/symbert/vocab.txt", home);
    else return -1;
    return k < 0 || (size_t)k >= outlen ? -1 : 0;
}

int wp_vocab_shipped_path(const char *exe, char *out, size_t outlen) {
    char self[4096];
    if (!exe) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0 || (size_t)n >= sizeof self - 1) return -1;
        self[n] = 0;
        exe = self;
    }
    /* PREFIX: exe without its last two components (".../PREFIX/bin/tool") */
    const char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    size_t n = (size_t)(slash - exe);
    while (n > 0 && exe[n - 1] != '/') n--;       /* back over the tool's folder */
    int k = n == 0 ? snprintf(out, outlen, "%s", exe[0] == '/' ? "/" SHIPPED_REL : SHIPPED_REL)
                   : snprintf(out, outlen, "%.*s" SHIPPED_REL, (int)n, exe);
    return k < 0 || (size_t)k >= outlen ? -1 : 0;
}

static int take(const char *path, const char *from, char *out, size_t outlen, char *err, size_t errlen) {
    if (strlen(path) >= outlen) { snprintf(err, errlen, "vocab path too long (from %s): %s", from, path); return -1; }
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "vocab %s (from %s): %s", path, from, strerror(errno));
        return -1;
    }
    strcpy(out, path);
    return 0;
}

int wp_vocab_locate(const char *given, char *out, size_t outlen, char *err, size_t errlen) {
    const char *env = getenv("SYMBERT_VOCAB");
    if (given && *given) return take(given, "--vocab", out, outlen, err, errlen);
    if (env && *env) return take(env, "$SYMBERT_VOCAB", out, outlen, err, errlen);
    char fetched[4096] = "", shipped[4096] = "";
    if (wp_vocab_default_path(fetched, sizeof fetched) == 0 && access(fetched, F_OK) == 0)
        return take(fetched, "the place of `oscar-fetch vocab`", out, outlen, err, errlen);
    if (wp_vocab_shipped_path(NULL, shipped, sizeof shipped) == 0 && access(shipped, F_OK) == 0)
        return take(shipped, "the copy shipped with the tools", out, outlen, err, errlen);
    snprintf(err, errlen, "no vocab: no --vocab, SYMBERT_VOCAB unset, none at %s (oscar-fetch vocab) nor at %s "
             "(shipped with the tools); pass --vocab FILE, set SYMBERT_VOCAB, or run: oscar-fetch vocab",
             fetched[0] ? fetched : "$XDG_DATA_HOME or $HOME (both unset)", shipped[0] ? shipped : "share/symbert/vocab.txt (program path unknown)");
    return -1;
}
