/* main.c - bin/bert-train: flags in, library calls out.  See docs/bert-train.md. */
#include "trainer/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *o) {
    fprintf(o,
        "usage: bert-train --count-params [--config tiny|small|base|FILE.json] [--attention original|symmetric|pairwise]\n");
}

int main(int argc, char **argv) {
    const char *config = "base", *attn = "original";
    int count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--count-params")) count = 1;
        else if (!strcmp(a, "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(a, "--attention") && i + 1 < argc) attn = argv[++i];
        else { fprintf(stderr, "bert-train: unknown or incomplete option %s\n", a); usage(stderr); return 2; }
    }
    bt_config cfg; char err[512];
    if (bt_config_preset(config, &cfg) && bt_config_load_json(config, &cfg, err, sizeof err)) {
        fprintf(stderr, "bert-train: %s\n", err); return 2;
    }
    if (bt_attn_parse(attn, &cfg.attn)) { fprintf(stderr, "bert-train: --attention %s: not original, symmetric or pairwise\n", attn); return 2; }
    if (count) { printf("%zu\n", bt_param_count(&cfg)); return 0; }
    usage(stderr);
    return 2;
}
