/* fetch_test.c - unit tests of the fetch library's pure parts: part lists,
 * checksum files, back-off, Retry-After, Content-Range and the Range
 * decision, origins, the token lookup, archive path safety, and fetch_unpack
 * on archives written here with libarchive.  The network paths are tested
 * end to end by tests/fetch_test.sh. */
#include "tests/t.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"  /* CHECK(cond) without a message */
#include "pipeline/fetch.h"
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* NB: tests/t.h's REQUIRE evaluates its condition twice: no calls inside it. */
static char err[4096];

static void test_parts(void) {
    int *v; size_t n;
    int r = fetch_parse_parts("1-3", &v, &n, err, sizeof err);
    REQUIRE(r == 0, "%s", err);
    CHECK(n == 3 && v[0] == 1 && v[1] == 2 && v[2] == 3);
    free(v);
    r = fetch_parse_parts("9,1,5,7-9,5", &v, &n, err, sizeof err);
    REQUIRE(r == 0, "%s", err);
    int want[] = {1, 5, 7, 8, 9};
    CHECK(n == 5, "n=%zu", n);
    for (size_t i = 0; i < n && i < 5; i++) CHECK(v[i] == want[i], "v[%zu]=%d", i, v[i]);
    free(v);
    r = fetch_parse_parts("1-300", &v, &n, err, sizeof err);
    REQUIRE(r == 0, "%s", err);
    CHECK(n == 300 && v[299] == 300);
    free(v);
    r = fetch_parse_parts("99999-100000", &v, &n, err, sizeof err);
    REQUIRE(r == 0, "%s", err);
    CHECK(n == 2 && v[1] == FETCH_MAX_PART);
    free(v);
    r = fetch_parse_parts("42", &v, &n, err, sizeof err);
    REQUIRE(r == 0, "%s", err);
    CHECK(n == 1 && v[0] == 42);
    free(v);
    const char *bad[] = {"", "0", "3-1", "1,,2", "1-", "-3", "a", "1 2", "1-2-3", "1,", "100001", "1-x", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = (int *)1;
        CHECK(fetch_parse_parts(bad[i], &v, &n, err, sizeof err) < 0, "'%s' accepted", bad[i]);
        CHECK(v == NULL && strlen(err) > 0);
    }
    CHECK(fetch_parse_parts("5-1", &v, &n, err, sizeof err) < 0 && strstr(err, "backwards"), "%s", err);
}

static void test_sums(void) {
    const char *txt =
        "e7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0b6  en_meta_part_1.jsonl.zst\n"
        "\n"
        "CE0DA5344C22437B222CEC5EFD8D00B2416858DA81DA8BC66DB74F769D2E2A85 *./en_meta_part_2.jsonl.zst\r\n"
        "72ab20fbaabe5704e0879a46adf55364f5fa0eb636941d894ea8d34acaac4466  name with spaces.zst";
    fetch_sums s;
    int r = fetch_sums_parse(&s, txt, strlen(txt), "checksum.sha256", err, sizeof err);
    REQUIRE(r == 0, "%s", err);
    CHECK(s.n == 3, "n=%zu", s.n);
    const char *h = fetch_sums_find(&s, "en_meta_part_1.jsonl.zst");
    CHECK(h && !strcmp(h, "e7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0b6"));
    h = fetch_sums_find(&s, "en_meta_part_2.jsonl.zst");
    CHECK(h && !strcmp(h, "ce0da5344c22437b222cec5efd8d00b2416858da81da8bc66db74f769d2e2a85"), "lower-cased, ./ ignored");
    CHECK(fetch_sums_find(&s, "name with spaces.zst") != NULL);
    CHECK(fetch_sums_find(&s, "en_meta_part_3.jsonl.zst") == NULL);
    CHECK(fetch_sums_find(&s, "en_meta_part_1.jsonl") == NULL, "no prefix match");
    fetch_sums_free(&s);
    struct { const char *txt; const char *where; } bad[] = {
        {"abc  file\n", "line 1"},
        {"e7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0b6\n", "line 1"},
        {"\n\ne7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0b60  f\n", "line 3"},
        {"e7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0bz  f\n", "line 1"},
        {"<html>gated</html>\n", "line 1"},
        {"e7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0b6    \n", "line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(fetch_sums_parse(&s, bad[i].txt, strlen(bad[i].txt), "sums", err, sizeof err) < 0, "case %zu accepted", i);
        CHECK(strstr(err, bad[i].where) && strstr(err, "sums"), "case %zu: %s", i, err);
    }
    /* an embedded NUL is not a checksum line */
    char nul[] = "e7cb94add870d2356c40bac754b7848ad232eab5a8d19a02953af39e5fe6f0b6  a\0b\n";
    CHECK(fetch_sums_parse(&s, nul, sizeof nul - 1, "sums", err, sizeof err) < 0);
    CHECK(fetch_sums_parse(&s, "", 0, "sums", err, sizeof err) == 0 && s.n == 0);
    fetch_sums_free(&s);
}

static void test_backoff(void) {
    /* base 1000: 1000, 2000, 4000... capped; equal jitter: [d/2, d) */
    CHECK(fetch_backoff_ms(1, 1000, 60000, 0) == 500);
    CHECK(fetch_backoff_ms(1, 1000, 60000, 0xFFFFFFFFu) == 999);
    CHECK(fetch_backoff_ms(2, 1000, 60000, 0) == 1000);
    CHECK(fetch_backoff_ms(3, 1000, 60000, 0x80000000u) == 3000);
    CHECK(fetch_backoff_ms(7, 1000, 60000, 0) == 30000, "%ld", fetch_backoff_ms(7, 1000, 60000, 0));
    CHECK(fetch_backoff_ms(50, 1000, 60000, 0) == 30000, "capped, no overflow");
    CHECK(fetch_backoff_ms(1000000, 1000, 60000, 0xFFFFFFFFu) < 60000);
    CHECK(fetch_backoff_ms(0, 1000, 60000, 0) == 500, "attempt < 1 counts as 1");
    CHECK(fetch_backoff_ms(1, 1, 60000, 0) == 1, "at least 1 ms");
    CHECK(fetch_backoff_ms(3, 0, 60000, 123) == 0);
    /* grows, and jitter spreads values */
    long prev = 0; int distinct = 0; long seen = -1;
    for (int a = 1; a <= 6; a++) { long d = fetch_backoff_ms(a, 100, 100000, 0); CHECK(d > prev); prev = d; }
    for (uint32_t r = 0; r < 10; r++) { long d = fetch_backoff_ms(4, 1000, 60000, r * 400000000u); if (d != seen) distinct++; seen = d; }
    CHECK(distinct >= 9, "jitter: %d distinct", distinct);
}

static void test_retry_after(void) {
    time_t now = curl_getdate("Wed, 21 Oct 2015 07:28:00 GMT", NULL);
    REQUIRE(now > 0);
    CHECK(fetch_retry_after_ms("120", now, 600000) == 120000);
    CHECK(fetch_retry_after_ms("  5 \r\n", now, 600000) == 5000);
    CHECK(fetch_retry_after_ms("0", now, 600000) == 0);
    CHECK(fetch_retry_after_ms("99999999999999999999", now, 600000) == 600000, "capped");
    CHECK(fetch_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now, 600000) == 30000,
          "%ld", fetch_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now, 600000));
    CHECK(fetch_retry_after_ms("Wednesday, 21-Oct-15 07:29:00 GMT", now, 600000) == 60000, "RFC 850 date");
    CHECK(fetch_retry_after_ms("Wed Oct 21 07:28:10 2015", now, 600000) == 10000, "asctime date");
    CHECK(fetch_retry_after_ms("Tue, 20 Oct 2015 07:28:00 GMT", now, 600000) == 0, "past date");
    CHECK(fetch_retry_after_ms("Fri, 21 Oct 2016 07:28:00 GMT", now, 600000) == 600000, "far date capped");
    const char *bad[] = {"", "  ", "-1", "1.5", "soon", "12abc", "Wed", NULL};
    for (int i = 0; i < 8; i++) CHECK(fetch_retry_after_ms(bad[i], now, 600000) == -1, "'%s' accepted", bad[i] ? bad[i] : "NULL");
}

static void test_content_range(void) {
    uint64_t a, b, t;
    CHECK(fetch_parse_content_range(" bytes 100-199/1000\r\n", &a, &b, &t) == 0 && a == 100 && b == 199 && t == 1000);
    CHECK(fetch_parse_content_range("bytes 0-0/1", &a, &b, &t) == 0 && a == 0 && b == 0 && t == 1);
    CHECK(fetch_parse_content_range("bytes 5-9/*", &a, &b, &t) == 0 && t == UINT64_MAX);
    CHECK(fetch_parse_content_range("BYTES 1073741824-2147483647/4294967296", &a, &b, &t) == 0 && a == 1073741824ULL);
    const char *bad[] = {"bytes */1000", "bytes 9-5/10", "bytes 0-9/9", "items 0-1/2", "bytes 1-2", "bytes=1-2/3",
                         "bytes 1-2/3 x", "bytes 99999999999999999999-1/2", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(fetch_parse_content_range(bad[i], &a, &b, &t) < 0, "'%s' accepted", bad[i]);
}

static void test_range_plan(void) {
    uint64_t skip = 99;
    CHECK(fetch_range_plan(0, 200, 0, 0, 1, &skip) == FETCH_APPEND && skip == 0, "fresh download");
    CHECK(fetch_range_plan(1000, 206, 1, 1000, 1, &skip) == FETCH_APPEND, "resume");
    CHECK(fetch_range_plan(1000, 206, 1, 1000, 0, &skip) == FETCH_APPEND, "resume a stream");
    CHECK(fetch_range_plan(1000, 200, 0, 0, 1, &skip) == FETCH_RESTART && skip == 0, "Range ignored: restart a file");
    CHECK(fetch_range_plan(1000, 200, 0, 0, 0, &skip) == FETCH_SKIP && skip == 1000, "Range ignored: skip in a stream");
    CHECK(fetch_range_plan(1000, 206, 1, 0, 1, &skip) == FETCH_BAD_RANGE, "206 from the wrong byte");
    CHECK(fetch_range_plan(1000, 206, 0, 0, 1, &skip) == FETCH_BAD_RANGE, "206 without Content-Range");
    CHECK(fetch_range_plan(1000, 206, 1, 2000, 0, &skip) == FETCH_BAD_RANGE, "206 past what we have");
}

static void test_origin(void) {
    CHECK(fetch_same_origin("https://huggingface.co/datasets/a", "https://huggingface.co/x?y"));
    CHECK(fetch_same_origin("https://HuggingFace.co:443/a", "https://huggingface.co/b"), "default port and case");
    CHECK(fetch_same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b"));
    CHECK(!fetch_same_origin("https://huggingface.co/a", "https://cdn-lfs.huggingface.co/a"), "CDN is another host");
    CHECK(!fetch_same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a"), "another port");
    CHECK(!fetch_same_origin("https://huggingface.co/a", "http://huggingface.co/a"), "another scheme");
    CHECK(!fetch_same_origin("https://huggingface.co.evil.com/a", "https://huggingface.co/a"));
    CHECK(!fetch_same_origin("https://user@evil.com@huggingface.co/a", "https://evil.com/a"));
    CHECK(!fetch_same_origin("not a url", "not a url"), "unparsable: never the same");
    CHECK(!fetch_same_origin(NULL, "https://a/"));
}

static void write_file(const char *p, const char *s) {
    FILE *f = fopen(p, "w");
    if (f) { fputs(s, f); fclose(f); }
}

static void test_token(void) {
    char tok[256], from[512], dir[] = "/tmp/fetch_test_tok_XXXXXX";
    char *made = mkdtemp(dir);
    REQUIRE(made != NULL, "mkdtemp: %s", strerror(errno));
    char p[600], home[600];
    unsetenv("HF_TOKEN"); unsetenv("HF_TOKEN_PATH"); unsetenv("HF_HOME"); unsetenv("XDG_CACHE_HOME");
    snprintf(home, sizeof home, "%s/home", dir);
    setenv("HOME", home, 1);
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 0, "no token anywhere");
    /* ~/.cache/huggingface/token */
    snprintf(p, sizeof p, "%s/home", dir); mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/home/.cache", dir); mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/home/.cache/huggingface", dir); mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/home/.cache/huggingface/token", dir);
    write_file(p, "  hf_fromcache \n");
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 1 && !strcmp(tok, "hf_fromcache"), "%s", tok);
    CHECK(!strcmp(from, p), "from=%s", from);
    CHECK(!strstr(from, "hf_fromcache"), "the token is never in `from`");
    /* $XDG_CACHE_HOME/huggingface/token replaces ~/.cache */
    snprintf(p, sizeof p, "%s/xdg", dir); setenv("XDG_CACHE_HOME", p, 1);
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 0, "XDG_CACHE_HOME without a token");
    /* $HF_HOME/token */
    snprintf(p, sizeof p, "%s/hfhome", dir); mkdir(p, 0700); setenv("HF_HOME", p, 1);
    snprintf(p, sizeof p, "%s/hfhome/token", dir); write_file(p, "hf_fromhome\n");
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 1 && !strcmp(tok, "hf_fromhome"));
    /* $HF_TOKEN_PATH */
    snprintf(p, sizeof p, "%s/tokpath", dir); write_file(p, "hf_frompath");
    setenv("HF_TOKEN_PATH", p, 1);
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 1 && !strcmp(tok, "hf_frompath"));
    /* $HF_TOKEN wins */
    setenv("HF_TOKEN", " hf_fromenv\n", 1);
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 1 && !strcmp(tok, "hf_fromenv"));
    CHECK(!strcmp(from, "$HF_TOKEN"));
    /* tokens that would break the header are refused, and not echoed */
    setenv("HF_TOKEN", "hf_a\r\nX-Evil: 1", 1);
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == -1);
    CHECK(!strstr(err, "hf_a") && !strstr(err, "Evil"), "%s", err);
    unsetenv("HF_TOKEN");
    write_file(p, "hf_one hf_two\n");
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == -1 && !strstr(err, "hf_one"), "%s", err);
    write_file(p, "\n  \n");
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == 0, "an empty token file is no token");
    /* a folder where the token file should be: an error that names it */
    unlink(p); mkdir(p, 0700);
    CHECK(fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err) == -1 && strstr(err, "tokpath"), "%s", err);
    unsetenv("HF_TOKEN_PATH"); unsetenv("HF_HOME"); unsetenv("XDG_CACHE_HOME");
    fetch_remove_tree(dir);
}

static void test_entry_path(void) {
    char out[256];
    CHECK(fetch_entry_path("blacklists/adult/domains", "blacklists", out, sizeof out, err, sizeof err) == 0 &&
          !strcmp(out, "adult/domains"), "%s", out);
    CHECK(fetch_entry_path("./blacklists//adult/./urls", "blacklists", out, sizeof out, err, sizeof err) == 0 &&
          !strcmp(out, "adult/urls"), "%s", out);
    CHECK(fetch_entry_path("adult/domains", "blacklists", out, sizeof out, err, sizeof err) == 0 && !strcmp(out, "adult/domains"));
    CHECK(fetch_entry_path("x/blacklists/y", "blacklists", out, sizeof out, err, sizeof err) == 0 &&
          !strcmp(out, "x/blacklists/y"), "only a leading component is stripped");
    CHECK(fetch_entry_path("blacklists/", "blacklists", out, sizeof out, err, sizeof err) == 1, "the top folder itself");
    CHECK(fetch_entry_path("adult", NULL, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, "adult"));
    const char *bad[] = {"/etc/passwd", "../x", "a/../../x", "a/..", "blacklists/../x", "", ".", "./", "//x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(fetch_entry_path(bad[i], "blacklists", out, sizeof out, err, sizeof err) < 0, "'%s' accepted", bad[i]);
    CHECK(fetch_entry_path("a/../b", NULL, out, sizeof out, err, sizeof err) < 0 && strstr(err, ".."), "%s", err);
    char longname[600];
    memset(longname, 'a', sizeof longname - 1); longname[sizeof longname - 1] = 0;
    CHECK(fetch_entry_path(longname, NULL, out, sizeof out, err, sizeof err) < 0, "too long for out");
}

static void test_link_inside(void) {
    CHECK(fetch_link_inside("porn", "adult"));
    CHECK(fetch_link_inside("adult/x", "../gambling/domains"));
    CHECK(fetch_link_inside("a/b/c", "../../d"));
    CHECK(fetch_link_inside("a", "."));
    CHECK(!fetch_link_inside("a", ".."));
    CHECK(!fetch_link_inside("a/b", "../../x"));
    CHECK(!fetch_link_inside("a", "b/../../x"), "goes above the folder on the way");
    CHECK(!fetch_link_inside("a", "/etc"));
    CHECK(!fetch_link_inside("a", ""));
    CHECK(fetch_link_inside("a/b", "c/./../d"));
}

/* Writes a .tar.gz with libarchive: entries {name, type, data or target}. */
typedef struct { const char *name; char type; const char *s; } ent;
static int make_tar(const char *path, const ent *e, size_t n) {
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) { archive_write_free(a); return -1; }
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *x = archive_entry_new();
        archive_entry_set_pathname(x, e[i].name);
        archive_entry_set_perm(x, 0644);
        if (e[i].type == 'd') { archive_entry_set_filetype(x, AE_IFDIR); archive_entry_set_perm(x, 0755); }
        else if (e[i].type == 'l') { archive_entry_set_filetype(x, AE_IFLNK); archive_entry_set_symlink(x, e[i].s); }
        else if (e[i].type == 'h') { archive_entry_set_filetype(x, AE_IFREG); archive_entry_set_hardlink(x, e[i].s); }
        else if (e[i].type == 'p') { archive_entry_set_filetype(x, AE_IFIFO); }
        else { archive_entry_set_filetype(x, AE_IFREG); archive_entry_set_size(x, (la_int64_t)strlen(e[i].s)); }
        archive_write_header(a, x);
        if (e[i].type == 'f') archive_write_data(a, e[i].s, strlen(e[i].s));
        archive_entry_free(x);
    }
    archive_write_close(a);
    archive_write_free(a);
    return 0;
}

static int slurp_eq(const char *path, const char *want) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k < 0) return 0;
    buf[k] = 0;
    return !strcmp(buf, want);
}

static void test_unpack(void) {
    char dir[] = "/tmp/fetch_test_unpack_XXXXXX";
    char *made = mkdtemp(dir);
    REQUIRE(made != NULL, "mkdtemp: %s", strerror(errno));
    char tgz[600], out[600], p[700];
    snprintf(tgz, sizeof tgz, "%s/a.tar.gz", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    ent good[] = {{"blacklists/", 'd', NULL}, {"blacklists/adult/", 'd', NULL},
                  {"blacklists/adult/domains", 'f', "a.test\nb.test\n"}, {"blacklists/adult/urls", 'f', "a.test/x\n"},
                  {"blacklists/porn", 'l', "adult"}, {"blacklists/adult/copy", 'h', "blacklists/adult/urls"},
                  {"blacklists/adult/empty", 'f', ""}};
    int r = make_tar(tgz, good, sizeof good / sizeof *good);
    REQUIRE(r == 0);
    mkdir(out, 0755);
    size_t files = 0;
    CHECK(fetch_unpack(tgz, out, "blacklists", &files, err, sizeof err) == 0, "%s", err);
    CHECK(files == 4, "files=%zu", files);
    snprintf(p, sizeof p, "%s/adult/domains", out); CHECK(slurp_eq(p, "a.test\nb.test\n"));
    snprintf(p, sizeof p, "%s/adult/copy", out); CHECK(slurp_eq(p, "a.test/x\n"), "hard link inside");
    snprintf(p, sizeof p, "%s/porn/domains", out); CHECK(slurp_eq(p, "a.test\nb.test\n"), "link inside works");
    snprintf(p, sizeof p, "%s/adult/empty", out);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == 0 && (st.st_mode & 0777) == 0644);
    fetch_remove_tree(out);

    struct { const char *what; ent e[3]; size_t n; const char *msg; } bad[] = {
        {"absolute", {{"/tmp/fetch_test_evil", 'f', "x"}}, 1, "absolute"},
        {"dotdot", {{"blacklists/../../fetch_test_evil", 'f', "x"}}, 1, ".."},
        {"link out", {{"blacklists/esc", 'l', "../../etc"}}, 1, "leaves the folder"},
        {"link abs", {{"blacklists/esc", 'l', "/etc"}}, 1, "leaves the folder"},
        {"through link", {{"blacklists/a/", 'd', NULL}, {"blacklists/l", 'l', "a"}, {"blacklists/l/f", 'f', "x"}}, 3, "through a link"},
        {"write over link", {{"blacklists/a", 'f', "x"}, {"blacklists/l", 'l', "a"}, {"blacklists/l", 'f', "y"}}, 3, "through a link"},
        {"hard out", {{"blacklists/h", 'h', "../x"}}, 1, "hard link"},
        {"hard to missing", {{"blacklists/h", 'h', "blacklists/nope"}}, 1, "hard link"},
        {"fifo", {{"blacklists/p", 'p', NULL}}, 1, "not a file"},
        {"top is a file", {{"blacklists", 'f', "x"}}, 1, "not a folder"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = make_tar(tgz, bad[i].e, bad[i].n);
        REQUIRE(r == 0);
        mkdir(out, 0755);
        err[0] = 0;
        CHECK(fetch_unpack(tgz, out, "blacklists", &files, err, sizeof err) < 0, "%s: accepted", bad[i].what);
        CHECK(strstr(err, bad[i].msg) != NULL, "%s: message '%s'", bad[i].what, err);
        CHECK(strstr(err, "a.tar.gz") != NULL, "%s: names the archive: %s", bad[i].what, err);
        fetch_remove_tree(out);
    }
    CHECK(access("/tmp/fetch_test_evil", F_OK) < 0 && access("/etc/esc", F_OK) < 0, "nothing written outside");
    snprintf(p, sizeof p, "%s/x", dir); CHECK(access(p, F_OK) < 0);
    /* not an archive at all */
    write_file(tgz, "<html>not found</html>\n");
    mkdir(out, 0755);
    CHECK(fetch_unpack(tgz, out, "blacklists", &files, err, sizeof err) < 0 && strstr(err, "a.tar.gz"), "%s", err);
    /* a truncated archive */
    r = make_tar(tgz, good, sizeof good / sizeof *good);
    REQUIRE(r == 0);
    r = stat(tgz, &st);
    REQUIRE(r == 0);
    r = truncate(tgz, st.st_size / 2);
    REQUIRE(r == 0);
    fetch_remove_tree(out); mkdir(out, 0755);
    CHECK(fetch_unpack(tgz, out, "blacklists", &files, err, sizeof err) < 0, "truncated archive accepted");
    fetch_remove_tree(dir);
}

static void test_install_tree(void) {
    char dir[] = "/tmp/fetch_test_inst_XXXXXX";
    char *made = mkdtemp(dir);
    REQUIRE(made != NULL, "mkdtemp: %s", strerror(errno));
    char from[600], to[600], p[700];
    snprintf(from, sizeof from, "%s/new", dir); mkdir(from, 0755);
    snprintf(to, sizeof to, "%s/ut1", dir); mkdir(to, 0755);
    snprintf(p, sizeof p, "%s/adult", from); mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/adult/domains", from); write_file(p, "new\n");
    snprintf(p, sizeof p, "%s/adult", to); mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/adult/domains", to); write_file(p, "old\n");
    snprintf(p, sizeof p, "%s/adult/stale", to); write_file(p, "old\n");
    snprintf(p, sizeof p, "%s/keep", to); write_file(p, "mine\n");
    CHECK(fetch_install_tree(from, to, err, sizeof err) == 0, "%s", err);
    snprintf(p, sizeof p, "%s/adult/domains", to); CHECK(slurp_eq(p, "new\n"));
    snprintf(p, sizeof p, "%s/adult/stale", to); CHECK(access(p, F_OK) < 0, "a category is replaced whole");
    snprintf(p, sizeof p, "%s/keep", to); CHECK(slurp_eq(p, "mine\n"), "other entries stay");
    fetch_remove_tree(dir);
    CHECK(access(dir, F_OK) < 0);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    T_RUN(test_parts);
    T_RUN(test_sums);
    T_RUN(test_backoff);
    T_RUN(test_retry_after);
    T_RUN(test_content_range);
    T_RUN(test_range_plan);
    T_RUN(test_origin);
    T_RUN(test_token);
    T_RUN(test_entry_path);
    T_RUN(test_link_inside);
    T_RUN(test_unpack);
    T_RUN(test_install_tree);
    curl_global_cleanup();
    return T_DONE();
}
