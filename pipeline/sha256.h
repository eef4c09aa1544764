/* sha256.h - SHA-256 (FIPS 180-4), streaming, for checksums of downloads,
 * shards, checkpoints and the vocab. */
#ifndef SYMBERT_SHA256_H
#define SYMBERT_SHA256_H
#include <stddef.h>
#include <stdint.h>
typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t n; } sha256_ctx;
void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
void sha256_final(sha256_ctx *c, unsigned char out[32]);
/* out: 65 bytes, lower-case hex + NUL */
void sha256_hex(const unsigned char d[32], char out[65]);
/* Hash of a whole file into hex; returns 0, or -1 with errno set. */
int sha256_file(const char *path, char out[65]);
#endif
