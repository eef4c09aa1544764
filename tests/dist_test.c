/* dist_test.c - trainer/dist.h: the launchers' variables, Slurm node
 * lists, and the rendezvous over TCP (127.0.0.1) and through a file, with
 * forked ranks: bytes arrive whole, a missing peer is an error naming the
 * rank and the address within the timeout, disagreeing world sizes are
 * refused.  (The training itself over several ranks: tests/train_dp_test.sh.) */
#include "t.h"
#include "trainer/dist.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *VARS[] = { "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                              "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_NODELIST", "OMPI_COMM_WORLD_RANK",
                              "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK" };
static void clear_env(void) { for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++) unsetenv(VARS[i]); }

/* a port nobody listens on now */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &n)) return 29999;
    close(fd);
    return ntohs(a.sin_port);
}

static void test_no_launcher(void) {
    clear_env();
    bt_dist_env d; char err[512];
    CHECK(bt_dist_detect(&d, NULL, 0, err, sizeof err) == 0);
    CHECK(d.rank == 0 && d.world == 1 && d.launcher == NULL && !d.host[0] && !d.file[0]);
    CHECK(d.timeout == BT_DIST_TIMEOUT);
}

static void test_torchrun(void) {
    clear_env();
    setenv("RANK", "5", 1); setenv("WORLD_SIZE", "8", 1); setenv("LOCAL_RANK", "1", 1);
    setenv("MASTER_ADDR", "node3", 1); setenv("MASTER_PORT", "1234", 1);
    bt_dist_env d; char err[512];
    REQUIRE(bt_dist_detect(&d, NULL, 7, err, sizeof err) == 1, "%s", err);
    CHECK(!strcmp(d.launcher, "torchrun") && d.rank == 5 && d.world == 8 && d.local_rank == 1);
    CHECK(!strcmp(d.host, "node3") && d.port == 1235 && d.timeout == 7, "torchrun's store has port 1234: %d", d.port);
    /* --dist-init wins over MASTER_ADDR */
    REQUIRE(bt_dist_detect(&d, "tcp://10.0.0.1:777", 0, err, sizeof err) == 1, "%s", err);
    CHECK(!strcmp(d.host, "10.0.0.1") && d.port == 777 && !d.file[0]);
    REQUIRE(bt_dist_detect(&d, "file:///shared/rdv", 0, err, sizeof err) == 1, "%s", err);
    CHECK(!strcmp(d.file, "/shared/rdv"));
    clear_env();
}

static void test_slurm_and_openmpi(void) {
    clear_env();
    setenv("SLURM_PROCID", "3", 1); setenv("SLURM_NTASKS", "16", 1); setenv("SLURM_LOCALID", "3", 1);
    setenv("SLURM_JOB_NODELIST", "gpu[07-09,12]", 1);
    bt_dist_env d; char err[512];
    REQUIRE(bt_dist_detect(&d, NULL, 0, err, sizeof err) == 1, "%s", err);
    CHECK(!strcmp(d.launcher, "slurm") && d.rank == 3 && d.world == 16 && d.local_rank == 3);
    CHECK(!strcmp(d.host, "gpu07") && d.port == BT_DIST_PORT, "%s:%d", d.host, d.port);
    setenv("MASTER_PORT", "4000", 1);
    REQUIRE(bt_dist_detect(&d, NULL, 0, err, sizeof err) == 1, "%s", err);
    CHECK(d.port == 4000);
    clear_env();
    setenv("OMPI_COMM_WORLD_RANK", "1", 1); setenv("OMPI_COMM_WORLD_SIZE", "2", 1); setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
    REQUIRE(bt_dist_detect(&d, NULL, 0, err, sizeof err) == 1, "%s", err);
    CHECK(!strcmp(d.launcher, "openmpi") && d.rank == 1 && d.world == 2 && d.local_rank == 1 && !d.host[0]);
    clear_env();
}

static void test_bad_values(void) {
    bt_dist_env d; char err[512];
    clear_env();
    setenv("RANK", "2", 1); setenv("WORLD_SIZE", "2", 1);
    CHECK(bt_dist_detect(&d, NULL, 0, err, sizeof err) == -1);
    CHECK(strstr(err, "RANK=2") && strstr(err, "WORLD_SIZE=2"), "%s", err);
    setenv("RANK", "one", 1);
    CHECK(bt_dist_detect(&d, NULL, 0, err, sizeof err) == -1 && strstr(err, "RANK=one"), "%s", err);
    unsetenv("RANK");
    CHECK(bt_dist_detect(&d, NULL, 0, err, sizeof err) == -1 && strstr(err, "RANK"), "%s", err);
    clear_env();
    CHECK(bt_dist_detect(&d, "tcp://host", 0, err, sizeof err) == -1 && strstr(err, "tcp://HOST:PORT"), "%s", err);
    CHECK(bt_dist_detect(&d, "tcp://host:99999", 0, err, sizeof err) == -1);
    CHECK(bt_dist_detect(&d, "http://host:80", 0, err, sizeof err) == -1 && strstr(err, "http://host:80"), "%s", err);
    setenv("MASTER_PORT", "0", 1);
    CHECK(bt_dist_detect(&d, NULL, 0, err, sizeof err) == -1 && strstr(err, "MASTER_PORT=0"), "%s", err);
    clear_env();
}

static void test_slurm_lists(void) {
    char h[64];
    CHECK(bt_slurm_first_host("node1", h, sizeof h) == 0 && !strcmp(h, "node1"));
    CHECK(bt_slurm_first_host("node1,node2", h, sizeof h) == 0 && !strcmp(h, "node1"));
    CHECK(bt_slurm_first_host("gpu[007-009]", h, sizeof h) == 0 && !strcmp(h, "gpu007"));
    CHECK(bt_slurm_first_host("gpu[3,5],cpu1", h, sizeof h) == 0 && !strcmp(h, "gpu3"));
    CHECK(bt_slurm_first_host("rack[2-4]-gpu", h, sizeof h) == 0 && !strcmp(h, "rack2-gpu"), "%s", h);
    CHECK(bt_slurm_first_host("gpu[7", h, sizeof h) == -1);
    CHECK(bt_slurm_first_host("", h, sizeof h) == -1);
}

static bt_dist_env tcp_env(int rank, int world, int port, double timeout) {
    bt_dist_env d;
    memset(&d, 0, sizeof d);
    d.rank = rank; d.world = world; d.local_rank = rank; d.port = port; d.timeout = timeout;
    snprintf(d.host, sizeof d.host, "127.0.0.1");
    return d;
}

/* rank `rank` in a child: exit 0 when it got `want`, 1 otherwise (message on stdout) */
static pid_t child_fetch(bt_dist_env d, const unsigned char *want, size_t len) {
    pid_t p = fork();
    if (p) return p;
    unsigned char got[256]; char err[512];
    if (bt_rendezvous(&d, got, len, err, sizeof err)) { printf("     child rank %d: %s\n", d.rank, err); _exit(1); }
    _exit(memcmp(got, want, len) ? 2 : 0);
}
static int child_status(pid_t p) { int st = 0; waitpid(p, &st, 0); return WIFEXITED(st) ? WEXITSTATUS(st) : 128; }

static void test_tcp_roundtrip(void) {
    unsigned char id[128];
    for (int i = 0; i < 128; i++) id[i] = (unsigned char)(i * 7 + 3);
    int port = free_port();
    fflush(stdout);
    pid_t a = child_fetch(tcp_env(1, 3, port, 20), id, sizeof id);
    pid_t b = child_fetch(tcp_env(2, 3, port, 20), id, sizeof id);
    usleep(200000);   /* the ranks arrive before rank 0 listens: they retry */
    bt_dist_env d0 = tcp_env(0, 3, port, 20);
    char err[512];
    CHECK(bt_rendezvous(&d0, id, sizeof id, err, sizeof err) == 0, "%s", err);
    CHECK(child_status(a) == 0);
    CHECK(child_status(b) == 0);
    /* a world of one: rank 0 listens and is done */
    bt_dist_env d1 = tcp_env(0, 1, free_port(), 1);
    CHECK(bt_rendezvous(&d1, id, sizeof id, err, sizeof err) == 0, "%s", err);
}

static void test_tcp_missing_peer(void) {
    unsigned char id[128] = { 1 };
    char err[512];
    int port = free_port();
    bt_dist_env d1 = tcp_env(1, 2, port, 0.5);
    double t0 = bt_dist_clock();
    CHECK(bt_rendezvous(&d1, id, sizeof id, err, sizeof err) == -1);
    CHECK(bt_dist_clock() - t0 < 5, "took %.1f s", bt_dist_clock() - t0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    CHECK(strstr(err, "rank 1") && strstr(err, want) && strstr(err, "rank 0"), "%s", err);
    bt_dist_env d0 = tcp_env(0, 3, port, 0.5);
    t0 = bt_dist_clock();
    CHECK(bt_rendezvous(&d0, id, sizeof id, err, sizeof err) == -1);
    CHECK(bt_dist_clock() - t0 < 5, "took %.1f s", bt_dist_clock() - t0);
    CHECK(strstr(err, "rank 0: rank 1 of 3") && strstr(err, want), "%s", err);
}

static void test_tcp_world_mismatch(void) {
    unsigned char id[128] = { 9 };
    int port = free_port();
    fflush(stdout);
    pid_t a = child_fetch(tcp_env(1, 3, port, 5), id, sizeof id);
    bt_dist_env d0 = tcp_env(0, 2, port, 5);
    char err[512];
    CHECK(bt_rendezvous(&d0, id, sizeof id, err, sizeof err) == -1);
    CHECK(strstr(err, "3 ranks") && strstr(err, "not 2"), "%s", err);
    CHECK(child_status(a) == 1);
}

static bt_dist_env file_env(int rank, int world, const char *path, double timeout) {
    bt_dist_env d;
    memset(&d, 0, sizeof d);
    d.rank = rank; d.world = world; d.timeout = timeout;
    snprintf(d.file, sizeof d.file, "%s", path);
    return d;
}

static void test_file_rendezvous(void) {
    unsigned char id[128];
    for (int i = 0; i < 128; i++) id[i] = (unsigned char)(255 - i);
    char err[512];
    fflush(stdout);
    pid_t a = child_fetch(file_env(1, 2, "rdv", 20), id, sizeof id);
    bt_dist_env d0 = file_env(0, 2, "rdv", 20);
    CHECK(bt_rendezvous(&d0, id, sizeof id, err, sizeof err) == 0, "%s", err);
    CHECK(child_status(a) == 0);
    struct stat sb;
    CHECK(stat("rdv", &sb) != 0 && stat("rdv.1", &sb) != 0, "the rendezvous files are removed");
    /* a file left by an earlier run is refused, not reused */
    FILE *f = fopen("old", "w"); fputs("stale", f); fclose(f);
    bt_dist_env s = file_env(0, 2, "old", 1);
    CHECK(bt_rendezvous(&s, id, sizeof id, err, sizeof err) == -1 && strstr(err, "old") && strstr(err, "exists"), "%s", err);
    /* missing peers, either side */
    bt_dist_env m0 = file_env(0, 2, "rdv2", 0.3);
    CHECK(bt_rendezvous(&m0, id, sizeof id, err, sizeof err) == -1 && strstr(err, "rank 1 of 2") && strstr(err, "rdv2"), "%s", err);
    CHECK(stat("rdv2", &sb) != 0);
    /* an answer left by an earlier run is not taken for this run's */
    f = fopen("rdv4.1", "w"); fputs("ok\n", f); fclose(f);
    bt_dist_env st = file_env(0, 2, "rdv4", 0.3);
    CHECK(bt_rendezvous(&st, id, sizeof id, err, sizeof err) == -1 && strstr(err, "rank 1 of 2"), "stale answer: %s", err);
    bt_dist_env m1 = file_env(1, 2, "rdv3", 0.3);
    CHECK(bt_rendezvous(&m1, id, sizeof id, err, sizeof err) == -1 && strstr(err, "rank 1") && strstr(err, "rdv3"), "%s", err);
    /* no rendezvous at all */
    bt_dist_env none = tcp_env(1, 2, 0, 1);
    none.host[0] = 0;
    CHECK(bt_rendezvous(&none, id, sizeof id, err, sizeof err) == -1 && strstr(err, "MASTER_ADDR"), "%s", err);
}

int main(void) {
    T_RUN(test_no_launcher);
    T_RUN(test_torchrun);
    T_RUN(test_slurm_and_openmpi);
    T_RUN(test_bad_values);
    T_RUN(test_slurm_lists);
    T_RUN(test_tcp_roundtrip);
    T_RUN(test_tcp_missing_peer);
    T_RUN(test_tcp_world_mismatch);
    T_RUN(test_file_rendezvous);
    return T_DONE();
}
