/* tokstream.h - the binary token stream that wordpiece writes and shard-pack
 * reads ("--format bin").
 *
 * Layout, all integers little-endian:
 *   header (48 bytes): magic "SBTK" | u32 version (1) | u32 vocab size |
 *                      u32 reserved (0) | 32 bytes sha256 of the vocab file
 *   then one record per document: u32 n | n x u16 token ids
 *     (the ids include [CLS] 101 first and [SEP] 102 last, as emitted)
 * Several streams may be concatenated (cat a.bin b.bin): a header may stand
 * wherever a record could; its vocab must match the first one.  n never equals
 * the magic as a u32 (0x4B544253), since a document is far shorter.
 * A stream that ends inside a record or a header is an error. */
#ifndef SYMBERT_TOKSTREAM_H
#define SYMBERT_TOKSTREAM_H
#include <stddef.h>
#include <stdint.h>
#include "pipeline/sio.h"

#define TS_MAGIC "SBTK"
#define TS_MAGIC_U32 0x4B544253u
#define TS_VERSION 1u
#define TS_HEADER_SIZE 48
#define TS_MAX_DOC_TOKENS (1u << 30)

typedef struct { uint32_t vocab_size; unsigned char vocab_sha256[32]; } ts_header;

/* Serialises a header into 48 bytes. */
void ts_header_pack(const ts_header *h, unsigned char out[TS_HEADER_SIZE]);

typedef struct ts_reader ts_reader;
/* Reads over an open sio (which it does not own).  Reads the first header. */
ts_reader *ts_reader_new(sio *in, char *err, size_t errlen);
const ts_header *ts_reader_header(const ts_reader *r);
/* Next document: *ids valid until the next call.  1 = doc, 0 = end, -1 = error
 * (message names the stream, document number and byte offset). */
int ts_next(ts_reader *r, const uint16_t **ids, uint32_t *n);
const char *ts_error(const ts_reader *r);
uint64_t ts_docs(const ts_reader *r);
void ts_reader_free(ts_reader *r);
#endif
