/* filter_test.c - the filters library: the three rules and their edges,
 * option strings, schema errors, UT1 URL splitting and matching (including a
 * large generated list), the streaming run (blocks, long lines, last line
 * without '\n', zstd frames, errors with file and line or byte offset). */
#include "tests/t.h"
#include "filters/filter.h"
#include "filters/ut1.h"
#include "pipeline/sio.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static void put_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fwrite(p, 1, n, f);
    fclose(f);
}
static void put_str(const char *path, const char *s) { put_file(path, s, strlen(s)); }

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); long k = ftell(f); fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)k + 1);
    *n = fread(b, 1, (size_t)k, f); b[*n] = 0;
    fclose(f);
    return b;
}

/* A document with the given metadata members (raw JSON text). */
static char *doc(const char *meta) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "{\"content\":\"x\",\"warc_headers\":{\"warc-record-id\":\"<urn:uuid:1>\","
             "\"warc-target-uri\":\"https://www.example.com/a\"},\"metadata\":{%s}}", meta);
    return buf;
}

/* -1 malformed, else the drop mask */
static int eval(const flt_rules *r, const char *line) {
    flt_verdict v; char err[256];
    if (flt_eval(r, line, strlen(line), &v, err, sizeof err) < 0) return -1;
    return (int)v.drop;
}
#define PP (1 << FLT_R_HARMFUL_PP)
#define CAT (1 << FLT_R_CATEGORIES)
#define QW (1 << FLT_R_WARNINGS)
#define U1 (1 << FLT_R_UT1)

static void test_harmful_pp_bounds(void) {
    flt_rules r; flt_rules_default(&r);
    struct { const char *v; int drop; } c[] = {
        { "5", 1 }, { "5.0", 1 }, { "5e0", 1 }, { "0.5e1", 1 }, { "50E-1", 1 }, { "5.0000000000000001", 1 },
        { "5.000000000000001", 0 }, { "4.999999999999999", 1 }, { "6", 0 }, { "263.27", 0 },
        { "99999", 0 }, { "99999.99999999999", 0 }, { "99999.999999999999", 1 }, { "100000", 1 },
        { "100000.0", 1 }, { "1e5", 1 }, { "1E+5", 1 }, { "100000.00000000001", 1 }, { "100001", 1 },
        { "-1", 1 }, { "0", 1 }, { "-0.0", 1 }, { "1e400", 1 }, { "-1e400", 1 }, { "1e-400", 1 },
        { "NaN", 1 }, { "Infinity", 1 }, { "-Infinity", 1 }, { "null", 1 },
        { "100000000000000000000000000000000000000000", 1 }, { "9.9999e4", 0 }, { "1e3", 0 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char m[128]; snprintf(m, sizeof m, "\"harmful_pp\":%s", c[i].v);
        int d = eval(&r, doc(m));
        CHECK(d == (c[i].drop ? PP : 0), "harmful_pp %s: drop mask %d", c[i].v, d);
    }
    CHECK(eval(&r, doc("\"categories\":null")) == PP, "missing harmful_pp drops");
    /* custom bounds and off */
    char err[256];
    REQUIRE(flt_set_harmful_pp(&r, "100:1e3", err, sizeof err) == 0, "%s", err);
    CHECK(eval(&r, doc("\"harmful_pp\":100")) == PP, "100 is not > 100");
    CHECK(eval(&r, doc("\"harmful_pp\":100.5")) == 0, "100.5 inside");
    CHECK(eval(&r, doc("\"harmful_pp\":999.9")) == 0, "999.9 inside");
    CHECK(eval(&r, doc("\"harmful_pp\":1000")) == PP, "1000 not < 1000");
    REQUIRE(flt_set_harmful_pp(&r, "off", err, sizeof err) == 0, "%s", err);
    CHECK(eval(&r, doc("\"harmful_pp\":null")) == 0, "off: null kept");
    CHECK(eval(&r, doc("\"harmful_pp\":\"text\"")) == 0, "off: the field is not even looked at");
    CHECK(flt_set_harmful_pp(&r, "5", err, sizeof err) < 0, "no colon");
    CHECK(flt_set_harmful_pp(&r, "9:5", err, sizeof err) < 0, "min > max");
    CHECK(flt_set_harmful_pp(&r, "5:x", err, sizeof err) < 0, "bad max");
    CHECK(flt_set_harmful_pp(&r, "nan:5", err, sizeof err) < 0, "nan bound");
    CHECK(flt_set_harmful_pp(&r, "5:inf", err, sizeof err) == 0, "open upper bound allowed");
    CHECK(eval(&r, doc("\"harmful_pp\":1e300")) == 0, "5:inf keeps 1e300");
    flt_rules_free(&r);
}

static void test_categories_exact(void) {
    flt_rules r; flt_rules_default(&r);
    const char *pp = "\"harmful_pp\":300,";
    struct { const char *v; int drop; } c[] = {
        { "[\"adult\"]", 1 }, { "[\"news\",\"adult\"]", 1 }, { "[\"mixed_adult\"]", 1 }, { "[\"sect\"]", 1 },
        { "[\"\\u0061dult\"]", 1 }, { "[\"ag\\u0072essif\"]", 1 }, { "[1,null,\"warez\"]", 1 },
        { "[\"Adult\"]", 0 }, { "[\"ADULT\"]", 0 }, { "[\"adult \"]", 0 }, { "[\"adults\"]", 0 },
        { "[\"mixed-adult\"]", 0 }, { "[\"adult\\u0000\"]", 0 }, { "[\"\\u0041dult\"]", 0 }, { "[]", 0 },
        { "null", 0 }, { "[1,2.5,null,true,{},[\"adult\"]]", 0 }, { "[ \"phishing\" ]", 1 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char m[256]; snprintf(m, sizeof m, "%s\"categories\":%s", pp, c[i].v);
        int d = eval(&r, doc(m));
        CHECK(d == (c[i].drop ? CAT : 0), "categories %s: drop mask %d", c[i].v, d);
    }
    char err[256];
    REQUIRE(flt_set_categories(&r, "news, Blog", err, sizeof err) == 0, "%s", err);
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"categories\":[\"adult\"]")) == 0, "adult no longer listed");
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"categories\":[\"Blog\"]")) == CAT, "custom name, trimmed");
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"categories\":[\"blog\"]")) == 0, "custom name is exact");
    CHECK(flt_set_categories(&r, "a,,b", err, sizeof err) < 0, "empty name refused");
    REQUIRE(flt_set_categories(&r, "off", err, sizeof err) == 0, "%s", err);
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"categories\":[\"news\"]")) == 0, "off");
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"categories\":7")) == 0, "off: not looked at");
    flt_rules_free(&r);
}

static void test_warnings(void) {
    flt_rules r; flt_rules_default(&r);
    const char *keep[] = { "null", "[]", "[ ]", "[\t]" };
    const char *drop[] = { "[\"tiny\"]", "[\"\"]", "[null]", "[[]]", "[0]", "[\"header\",\"footer\"]" };
    for (size_t i = 0; i < 4; i++) {
        char m[128]; snprintf(m, sizeof m, "\"harmful_pp\":300,\"quality_warnings\":%s", keep[i]);
        CHECK(eval(&r, doc(m)) == 0, "%s keeps", keep[i]);
    }
    for (size_t i = 0; i < 6; i++) {
        char m[128]; snprintf(m, sizeof m, "\"harmful_pp\":300,\"quality_warnings\":%s", drop[i]);
        CHECK(eval(&r, doc(m)) == QW, "%s drops", drop[i]);
    }
    char err[256];
    REQUIRE(flt_set_warnings(&r, "tiny,noisy", err, sizeof err) == 0, "%s", err);
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"quality_warnings\":[\"header\",\"footer\"]")) == 0, "list: others keep");
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"quality_warnings\":[\"header\",\"noisy\"]")) == QW, "list: noisy drops");
    REQUIRE(flt_set_warnings(&r, "off", err, sizeof err) == 0, "%s", err);
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"quality_warnings\":[\"tiny\"]")) == 0, "off");
    flt_rules_free(&r);
}

static void test_several_reasons_and_duplicates(void) {
    flt_rules r; flt_rules_default(&r);
    CHECK(eval(&r, doc("\"harmful_pp\":1,\"categories\":[\"adult\"],\"quality_warnings\":[\"tiny\"]")) == (PP | CAT | QW),
          "three reasons at once");
    /* duplicate keys: the last one wins, as in Python */
    CHECK(eval(&r, doc("\"harmful_pp\":1,\"harmful_pp\":300")) == 0, "last harmful_pp wins");
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"harmful_pp\":null")) == PP, "last (null) wins");
    CHECK(eval(&r, doc("\"harmful_pp\":300,\"categories\":[\"adult\"],\"categories\":null")) == 0, "last categories wins");
    /* an earlier metadata object is replaced as a whole */
    const char *two = "{\"metadata\":{\"harmful_pp\":300,\"categories\":[\"adult\"]},\"content\":\"\",\"metadata\":{\"harmful_pp\":7}}";
    CHECK(eval(&r, two) == 0, "second metadata replaces the first");
    /* decoys nested elsewhere do not count; escaped key names do */
    CHECK(eval(&r, "{\"harmful_pp\":1,\"metadata\":{\"extra\":{\"harmful_pp\":1,\"categories\":[\"adult\"]},\"harmful_pp\":300}}") == 0,
          "decoys ignored");
    CHECK(eval(&r, "{\"metadata\":{\"harmful\\u005fpp\":300,\"\\u0063ategories\":[\"adult\"]}}") == CAT, "escaped keys");
    CHECK(eval(&r, " \t{\"metadata\":{\"harmful_pp\":300}} \r") == 0, "surrounding whitespace");
    flt_rules_free(&r);
}

static void test_schema_and_malformed(void) {
    flt_rules r; flt_rules_default(&r);
    flt_verdict v; char err[256];
    const char *bad[] = {
        "{\"metadata\":{\"harmful_pp\":\"300\"}}", "{\"metadata\":{\"harmful_pp\":true}}",
        "{\"metadata\":{\"harmful_pp\":300,\"categories\":\"adult\"}}", "{\"metadata\":{\"harmful_pp\":300,\"categories\":{}}}",
        "{\"metadata\":{\"harmful_pp\":300,\"quality_warnings\":\"tiny\"}}", "{\"metadata\":null}", "{\"metadata\":[]}",
        "[1,2]", "\"text\"", "", "{", "{\"metadata\":{\"harmful_pp\":300}} x", "{\"a\":01}", "{\"a\":\"\x01\"}",
        "{\"a\":1,}", "{'a':1}", "\xef\xbb\xbf{}", "{\"a\":\"\\x\"}", "{\"a\":-}", "{\"a\":nul}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = flt_eval(&r, bad[i], strlen(bad[i]), &v, err, sizeof err);
        CHECK(rc < 0, "accepted: %s", bad[i]);
        CHECK(rc >= 0 || !strncmp(err, "byte ", 5), "message '%s' does not start with a byte offset", err);
    }
    REQUIRE(flt_eval(&r, bad[0], strlen(bad[0]), &v, err, sizeof err) < 0, "string pp");
    CHECK(strstr(err, "byte 26") && strstr(err, "metadata.harmful_pp") && strstr(err, "string"), "message: %s", err);
    /* unannotated: no metadata key */
    const char *un = "{\"content\":\"hello\",\"warc_headers\":{}}";
    REQUIRE(flt_eval(&r, un, strlen(un), &v, err, sizeof err) == 0, "%s", err);
    CHECK(v.drop == 0 && v.unannotated == 1, "unannotated kept, drop %u", v.drop);
    /* invalid UTF-8 in content is not the scanner's business */
    const char *u8 = "{\"content\":\"\xff\xfe\xc3(\xed\xa0\x80\",\"metadata\":{\"harmful_pp\":300}}";
    CHECK(flt_eval(&r, u8, strlen(u8), &v, err, sizeof err) == 0 && v.drop == 0, "invalid UTF-8 content: %s", err);
    flt_rules_free(&r);
}

/* ---- UT1 ---- */

static void test_split_url(void) {
    struct { const char *url, *host, *path; } c[] = {
        { "https://www.Example.COM/a/b?q=1#frag", "www.example.com", "/a/b?q=1" },
        { "http://user:pw@host.org:8080/x", "host.org", "/x" },
        { "http://host.org./", "host.org", "/" },
        { "HTTP://HOST.ORG", "host.org", "" },
        { "host.org/path", "host.org", "/path" },
        { "//host.org?x", "host.org", "?x" },
        { "http://[2001:DB8::1]:80/p", "[2001:db8::1]", "/p" },
        { "ftp://10.0.0.1:21/f", "10.0.0.1", "/f" },
        { "http://a.b.c:abc/", "a.b.c", "/" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char host[256]; const char *p; size_t pn;
        long hn = ut1_split_url(c[i].url, strlen(c[i].url), host, sizeof host, &p, &pn);
        CHECK(hn == (long)strlen(c[i].host) && !strcmp(host, c[i].host), "%s: host '%s'", c[i].url, hn > 0 ? host : "");
        CHECK(pn == strlen(c[i].path) && !memcmp(p, c[i].path, pn), "%s: path '%.*s'", c[i].url, (int)pn, p);
    }
    char host[8]; const char *p; size_t pn;
    CHECK(ut1_split_url("http:///x", 9, host, sizeof host, &p, &pn) < 0, "empty host");
    CHECK(ut1_split_url("http://verylonghost/", 20, host, sizeof host, &p, &pn) < 0, "host longer than the buffer");
}

static void mkd(const char *d) { mkdir(d, 0755); }

static void make_ut1(void) {
    mkd("ut1"); mkd("ut1/adult"); mkd("ut1/phishing"); mkd("ut1/empty");
    put_str("ut1/adult/domains", "# comment line\nexample-adult.com\n  Spaced.Example.ORG  \nsub.shared.net # trailing comment\n"
            "*.wild.net\n.dotted.net\n10.1.2.3\ntrail.net.\n\n");
    put_str("ut1/adult/urls", "files.example.com/private/\nhttp://schemed.org/x\nwhole.example.net\n");
    put_str("ut1/adult/expressions", "(^|[-/_.])porn([-/_.?]|$)\n");
    put_str("ut1/phishing/domains", "shared.net\nphish.io\r\n");
    put_str("ut1/empty/usage", "black\n");
}

static void test_ut1_matching(void) {
    make_ut1();
    const char *cats[] = { "adult", "phishing" };
    char err[512];
    ut1_lists *l = ut1_load("ut1", cats, 2, err, sizeof err);
    REQUIRE(l, "load: %s", err);
    ut1_info in; ut1_get_info(l, &in);
    CHECK(in.domains == 9, "domains %zu", in.domains);
    CHECK(in.urls == 3 && in.expressions == 1, "urls %zu expressions %zu", in.urls, in.expressions);
    struct { const char *url; int kind, cat; } c[] = {
        { "http://example-adult.com/", UT1_DOMAIN, 0 },
        { "https://a.b.EXAMPLE-ADULT.com:443/x", UT1_DOMAIN, 0 },
        { "http://notexample-adult.com/", UT1_NONE, 0 },
        { "http://example-adult.com.evil.org/", UT1_NONE, 0 },
        { "http://spaced.example.org", UT1_DOMAIN, 0 },
        { "http://x.wild.net/", UT1_DOMAIN, 0 },
        { "http://dotted.net/", UT1_DOMAIN, 0 },
        { "http://trail.net./", UT1_DOMAIN, 0 },
        { "http://10.1.2.3/", UT1_DOMAIN, 0 },
        { "http://5.10.1.2.3/", UT1_NONE, 0 },            /* a numeric host matches only exactly */
        { "http://phish.io/login", UT1_DOMAIN, 1 },
        { "http://shared.net/", UT1_DOMAIN, 1 },
        { "http://sub.shared.net/", UT1_DOMAIN, 0 },       /* in both: the lowest category index */
        { "http://files.example.com/private/a.jpg", UT1_URL, 0 },
        { "http://cdn.files.example.com/private/", UT1_URL, 0 },
        { "http://files.example.com/public/a.jpg", UT1_NONE, 0 },
        { "http://files.example.com/privat", UT1_NONE, 0 },
        { "https://schemed.org/xyz", UT1_URL, 0 },
        { "https://whole.example.net", UT1_URL, 0 },
        { "http://site.org/free-PORN/page", UT1_EXPRESSION, 0 },
        { "http://site.org/pornography", UT1_NONE, 0 },
        { "not a url at all", UT1_NONE, 0 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        ut1_match m = { 0, 0 };
        int hit = ut1_match_url(l, c[i].url, strlen(c[i].url), &m);
        if (c[i].kind == UT1_NONE) CHECK(!hit, "%s matched (kind %d)", c[i].url, m.kind);
        else CHECK(hit && m.kind == c[i].kind && m.category == c[i].cat, "%s: hit %d kind %d cat %d", c[i].url, hit, m.kind, m.category);
    }
    ut1_free(l);
    /* errors */
    const char *missing[] = { "adult", "nosuch" };
    CHECK(!ut1_load("ut1", missing, 2, err, sizeof err) && strstr(err, "nosuch"), "missing category: %s", err);
    const char *empty[] = { "empty" };
    CHECK(!ut1_load("ut1", empty, 1, err, sizeof err) && strstr(err, "none of"), "empty category: %s", err);
    mkd("ut1b"); mkd("ut1b/adult");
    put_str("ut1b/adult/expressions", "ok\n# fine\n(unclosed\n");
    const char *a[] = { "adult" };
    CHECK(!ut1_load("ut1b", a, 1, err, sizeof err) && strstr(err, "line 3"), "bad regex: %s", err);
}

static void test_ut1_large_list(void) {
    /* 300k generated domains: every one found, with a subdomain, and near misses not */
    mkd("big"); mkd("big/adult");
    FILE *f = fopen("big/adult/domains", "w");
    REQUIRE(f, "create");
    const int N = 300000;
    for (int i = 0; i < N; i++) fprintf(f, "d%dx%d.example%d.com\n", i, i * 7 % 1000, i % 13);
    fclose(f);
    const char *a[] = { "adult" };
    char err[512];
    ut1_lists *l = ut1_load("big", a, 1, err, sizeof err);
    REQUIRE(l, "%s", err);
    ut1_info in; ut1_get_info(l, &in);
    CHECK(in.domains == (size_t)N, "domains %zu", in.domains);
    CHECK(in.bytes < (size_t)N * 64, "memory %zu bytes for %d domains", in.bytes, N);
    int found = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        char u[128]; ut1_match m;
        snprintf(u, sizeof u, "http://www.d%dx%d.example%d.com/p", i, i * 7 % 1000, i % 13);
        found += ut1_match_url(l, u, strlen(u), &m);
        snprintf(u, sizeof u, "http://d%dx%d.example%d.com/p", i, i * 7 % 1000 + 1, i % 13);
        wrong += ut1_match_url(l, u, strlen(u), &m);
    }
    CHECK(found == N && wrong == 0, "found %d of %d, false matches %d", found, N, wrong);
    ut1_free(l);
}

static void test_eval_with_ut1(void) {
    make_ut1();
    const char *cats[] = { "adult" };
    char err[512];
    ut1_lists *l = ut1_load("ut1", cats, 1, err, sizeof err);
    REQUIRE(l, "%s", err);
    flt_rules r; flt_rules_default(&r);
    r.ut1 = l;
    flt_verdict v;
    const char *d1 = "{\"warc_headers\":{\"warc-target-uri\":\"http:\\/\\/www.example-adult.com\\/x\"},\"metadata\":{\"harmful_pp\":300}}";
    REQUIRE(flt_eval(&r, d1, strlen(d1), &v, err, sizeof err) == 0, "%s", err);
    CHECK(v.drop == U1 && v.ut1.kind == UT1_DOMAIN, "escaped URL matched: drop %u", v.drop);
    const char *d2 = "{\"warc_headers\":{\"warc-target-uri\":null},\"content\":\"x\"}";
    REQUIRE(flt_eval(&r, d2, strlen(d2), &v, err, sizeof err) == 0, "%s", err);
    CHECK(v.drop == 0 && v.no_url && v.unannotated, "no url, no metadata: kept");
    const char *d3 = "{\"warc_headers\":{\"warc-target-uri\":\"https://a.example-adult.com/\"}}";
    REQUIRE(flt_eval(&r, d3, strlen(d3), &v, err, sizeof err) == 0, "%s", err);
    CHECK(v.drop == U1 && v.unannotated, "unannotated dropped by UT1 only");
    const char *d4 = "{\"warc_headers\":{\"warc-target-uri\":5},\"metadata\":{\"harmful_pp\":300}}";
    CHECK(flt_eval(&r, d4, strlen(d4), &v, err, sizeof err) < 0 && strstr(err, "warc-target-uri"), "URL type: %s", err);
    flt_rules_free(&r);
    ut1_free(l);
}

/* ---- streaming ---- */

static int run_files_z(const flt_rules *r, const char **paths, int n, const char *outpath, int skip, int level,
                       int threads, flt_stats *st, char *err, size_t errlen) {
    int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sout *o = sout_fd(fd, outpath, level, threads, err, errlen);
    flt_run_opts ro = { .skip_malformed = skip };
    memset(st, 0, sizeof *st);
    int rc = flt_run(r, paths, n, o, &ro, st, err, errlen);
    if (rc == 0 && sout_finish(o) < 0) rc = -1;
    sout_free(o);
    close(fd);
    return rc;
}

static int run_files(const flt_rules *r, const char **paths, int n, const char *outpath, int skip,
                     flt_stats *st, char *err, size_t errlen) {
    return run_files_z(r, paths, n, outpath, skip, 0, 0, st, err, errlen);
}

static void test_run_bytes_and_order(void) {
    flt_rules r; flt_rules_default(&r);
    /* kept lines in order, byte-for-byte (odd spacing, CR, invalid UTF-8);
     * a last line without '\n' gets one */
    const char *in =
        "{\"metadata\":{\"harmful_pp\":300}, \"content\":\"k1 \xff\"}\r\n"
        "{\"metadata\":{\"harmful_pp\":3}}\n"
        "  {\"metadata\" : {\"harmful_pp\" : 300.0 }}\n"
        "{\"metadata\":{\"harmful_pp\":300,\"categories\":[\"adult\"]}}\n"
        "{\"content\":\"no metadata\"}\n"
        "{\"metadata\":{\"harmful_pp\":301}}";
    put_str("in1.jsonl", in);
    const char *want =
        "{\"metadata\":{\"harmful_pp\":300}, \"content\":\"k1 \xff\"}\r\n"
        "  {\"metadata\" : {\"harmful_pp\" : 300.0 }}\n"
        "{\"content\":\"no metadata\"}\n"
        "{\"metadata\":{\"harmful_pp\":301}}\n";
    const char *paths[] = { "in1.jsonl" };
    flt_stats st; char err[512];
    REQUIRE(run_files(&r, paths, 1, "out1.jsonl", 0, &st, err, sizeof err) == 0, "%s", err);
    size_t n; char *got = slurp("out1.jsonl", &n);
    CHECK(n == strlen(want) && !memcmp(got, want, n), "output:\n%s", got);
    free(got);
    CHECK(st.documents == 6 && st.kept == 4 && st.dropped == 2 && st.unannotated == 1, "stats %llu %llu %llu",
          (unsigned long long)st.documents, (unsigned long long)st.kept, (unsigned long long)st.dropped);
    CHECK(st.by_reason[FLT_R_HARMFUL_PP] == 1 && st.by_reason[FLT_R_CATEGORIES] == 1, "reasons");
    CHECK(st.bytes_in == strlen(in) && st.bytes_out == strlen(want) && st.files == 1, "bytes in %llu out %llu",
          (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
    /* the same as two zstd frames, plus a second (plain) file */
    size_t cap = ZSTD_compressBound(strlen(in)) * 2;
    char *z = malloc(cap);
    size_t z1 = ZSTD_compress(z, cap, in, 100, 3);
    size_t z2 = ZSTD_compress(z + z1, cap - z1, in + 100, strlen(in) - 100, 19);
    put_file("in1.jsonl.zst", z, z1 + z2);
    const char *two[] = { "in1.jsonl.zst", "in1.jsonl" };
    REQUIRE(run_files(&r, two, 2, "out2.jsonl", 0, &st, err, sizeof err) == 0, "%s", err);
    got = slurp("out2.jsonl", &n);
    CHECK(n == 2 * strlen(want) && !memcmp(got, want, strlen(want)) && !memcmp(got + strlen(want), want, strlen(want)),
          "two files");
    CHECK(st.files == 2 && st.documents == 12 && st.bytes_in_raw == z1 + z2 + strlen(in), "stats of two files");
    free(got);
    /* truncated zstd: an error naming the file and a byte offset */
    put_file("trunc.zst", z, z1 + z2 - 4);
    const char *t[] = { "trunc.zst" };
    CHECK(run_files(&r, t, 1, "out3.jsonl", 0, &st, err, sizeof err) < 0 && strstr(err, "trunc.zst") && strstr(err, "byte"),
          "truncated: %s", err);
    free(z);
    /* an empty file is fine */
    put_str("empty.jsonl", "");
    const char *e[] = { "empty.jsonl" };
    CHECK(run_files(&r, e, 1, "out4.jsonl", 0, &st, err, sizeof err) == 0 && st.documents == 0 && st.files == 1, "empty");
    flt_rules_free(&r);
}

static void test_run_malformed(void) {
    flt_rules r; flt_rules_default(&r);
    put_str("bad.jsonl", "{\"metadata\":{\"harmful_pp\":300}}\n{\"metadata\":{\"harmful_pp\":300}\n"
            "{\"metadata\":{\"harmful_pp\":\"x\"}}\n\n{\"metadata\":{\"harmful_pp\":300}}\n");
    const char *p[] = { "bad.jsonl" };
    flt_stats st; char err[512];
    CHECK(run_files(&r, p, 1, "o.jsonl", 0, &st, err, sizeof err) < 0, "malformed line must fail");
    CHECK(strstr(err, "bad.jsonl: line 2: byte 30") != NULL, "message: %s", err);
    REQUIRE(run_files(&r, p, 1, "o.jsonl", 1, &st, err, sizeof err) == 0, "skip: %s", err);
    CHECK(st.malformed == 3 && st.documents == 2 && st.kept == 2, "malformed %llu documents %llu",
          (unsigned long long)st.malformed, (unsigned long long)st.documents);
    size_t n; char *got = slurp("o.jsonl", &n);
    CHECK(n == 2 * 32, "two kept lines, %zu bytes", n);
    free(got);
    flt_rules_free(&r);
}

static void test_run_long_lines(void) {
    /* lines longer than the 4 MiB block, kept byte-for-byte, between short ones */
    flt_rules r; flt_rules_default(&r);
    size_t big = (9u << 20) + 123;
    FILE *f = fopen("long.jsonl", "wb");
    REQUIRE(f, "create");
    const char *head = "{\"metadata\":{\"harmful_pp\":300},\"content\":\"";
    fputs("{\"metadata\":{\"harmful_pp\":300}}\n", f);
    fputs(head, f);
    for (size_t i = 0; i < big; i++) fputc('a' + (int)(i % 26), f);
    fputs("\"}\n{\"metadata\":{\"harmful_pp\":1}}\n", f);
    fputs(head, f);
    for (size_t i = 0; i < big / 3; i++) fputc('z', f);
    fputs("\"}\n", f);
    fclose(f);
    const char *p[] = { "long.jsonl" };
    flt_stats st; char err[512];
    REQUIRE(run_files(&r, p, 1, "long.out", 0, &st, err, sizeof err) == 0, "%s", err);
    size_t ni, no;
    char *in = slurp("long.jsonl", &ni), *out = slurp("long.out", &no);
    /* the output is the input without its third line */
    const char *third = strstr(in, "{\"metadata\":{\"harmful_pp\":1}}\n");
    REQUIRE(third, "third line");
    size_t a = (size_t)(third - in), tl = strlen("{\"metadata\":{\"harmful_pp\":1}}\n");
    CHECK(no == ni - tl && !memcmp(out, in, a) && !memcmp(out + a, in + a + tl, ni - a - tl), "long lines differ");
    CHECK(st.documents == 4 && st.kept == 3, "documents %llu", (unsigned long long)st.documents);
    free(in); free(out);
    flt_rules_free(&r);
}

/* zstd in and out: the input written through sout (level 3, 2 workers:
 * small writes gathered, large ones passed straight to zstd), read back by
 * the reader (decompressing straight into its blocks), the
 * output compressed by 2 workers and read back through sio in small reads:
 * the kept bytes are the input's without the dropped lines. */
static void test_run_zstd_both_ways(void) {
    flt_rules r; flt_rules_default(&r);
    int fd = open("mix.jsonl.zst", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char err[512];
    sout *w = sout_fd(fd, "mix.jsonl.zst", 3, 2, err, sizeof err);
    REQUIRE(w, "%s", err);
    size_t cap = 24u << 20, ni = 0, nw = 0, nk = 0;
    char *in = malloc(cap), *want = malloc(cap), *line = malloc(1u << 20);
    REQUIRE(in && want && line, "memory");
    uint64_t x = 7;
    for (int i = 0; ni < 20u << 20; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t pad = (size_t)(x >> 33) % (i % 50 == 0 ? 700000 : 9000);    /* a few long lines */
        int drop = (x >> 20) % 3 == 0;
        int k = snprintf(line, 64, "{\"metadata\":{\"harmful_pp\":%s},\"c\":\"", drop ? "1" : "300");
        for (size_t j = 0; j < pad; j++) line[k + j] = (char)('a' + (j * 7 + (size_t)i) % 26);
        k += (int)pad;
        k += snprintf(line + k, 8, "\"}\n");
        memcpy(in + ni, line, (size_t)k); ni += (size_t)k;
        if (!drop) { memcpy(want + nw, line, (size_t)k); nw += (size_t)k; nk++; }
        /* split each line into a small and a large write */
        size_t cut = (size_t)k < 100 ? (size_t)k : 100;
        CHECK(sout_write(w, line, cut) == 0 && sout_write(w, line + cut, (size_t)k - cut) == 0, "write");
    }
    CHECK(sout_finish(w) == 0, "finish: %s", sout_error(w));
    sout_free(w); close(fd);
    const char *p[] = { "mix.jsonl.zst" };
    flt_stats st;
    REQUIRE(run_files_z(&r, p, 1, "mix.out.zst", 0, 3, 2, &st, err, sizeof err) == 0, "%s", err);
    CHECK(st.kept == nk && st.bytes_in == ni && st.bytes_out == nw, "kept %llu of %llu", (unsigned long long)st.kept,
          (unsigned long long)st.documents);
    sio *rd = sio_open("mix.out.zst", err, sizeof err);
    REQUIRE(rd, "%s", err);
    CHECK(sio_is_zstd(rd), "zstd output");
    size_t no = 0; long k;
    while (no < cap && (k = sio_read(rd, in + no, 1000)) > 0) no += (size_t)k;   /* in[] reused as the buffer */
    CHECK(k == 0, "read: %s", sio_error(rd));
    CHECK(no == nw && !memcmp(in, want, nw), "output differs (%zu vs %zu bytes)", no, nw);
    sio_close(rd);
    free(in); free(want); free(line);
    flt_rules_free(&r);
}

static void test_stats_json(void) {
    flt_rules r; flt_rules_default(&r);
    char err[64];
    flt_set_warnings(&r, "tiny,we\"ird", err, sizeof err);
    flt_stats st; memset(&st, 0, sizeof st);
    st.documents = 10; st.kept = 7; st.dropped = 3; st.by_reason[FLT_R_HARMFUL_PP] = 2; st.bytes_in = 12345;
    char *js = flt_stats_json(&st, &r, 1.5);
    REQUIRE(js, "json");
    CHECK(strstr(js, "\"documents\": 10") && strstr(js, "\"kept\": 7") && strstr(js, "\"harmful_pp\": 2"), "%s", js);
    CHECK(strstr(js, "\"bytes_in\": 12345") && strstr(js, "\"harmful_pp\": [5, 100000]"), "%s", js);
    CHECK(strstr(js, "[\"tiny\", \"we\\\"ird\"]") != NULL, "escaped names: %s", js);
    free(js);
    flt_rules_free(&r);
}

int main(void) {
    T_RUN(test_harmful_pp_bounds);
    T_RUN(test_categories_exact);
    T_RUN(test_warnings);
    T_RUN(test_several_reasons_and_duplicates);
    T_RUN(test_schema_and_malformed);
    T_RUN(test_split_url);
    T_RUN(test_ut1_matching);
    T_RUN(test_ut1_large_list);
    T_RUN(test_eval_with_ut1);
    T_RUN(test_run_bytes_and_order);
    T_RUN(test_run_malformed);
    T_RUN(test_run_long_lines);
    T_RUN(test_run_zstd_both_ways);
    T_RUN(test_stats_json);
    return T_DONE();
}
