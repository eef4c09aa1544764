/* tokstream.h - the binary token stream that wordpiece writes and shard-pack
 * reads ("--format bin").
 *
 * Layout, all integers little-endian:
 *   header (48 bytes): magic "SBTK" | u32 version (2) | u32 vocab size |
 *                      u32 reserved (0) | 32 bytes sha256 of the vocab file
 *   then one record per document: u32 n | n x u16 token ids
 *     (the ids include [CLS] 101 first and [SEP] 102 last, as emitted)
 *   trailer (32 bytes): magic "SBTE" | u32 reserved (0) | u64 documents |
 *                       u64 tokens | u64 checksum of the records
 * The trailer is written only when the writer's own input ended cleanly, so
 * a stream without one was cut: its writer was killed or its input failed.
 * Readers refuse such a stream unless told to accept it (TS_ALLOW_NO_TRAILER).
 * The checksum is FNV-1a 64 taken over values rather than bytes: starting
 * from 0xcbf29ce484222325, h = (h ^ v) * 0x100000001b3 (mod 2^64) for each
 * record's n (as a u32) and then each of its ids.
 *
 * Several streams may be concatenated (cat a.bin b.bin): a header may follow
 * a trailer; its vocab must match the first one.  n never equals either
 * magic as a u32 (0x4B544253, 0x45544253), since a document is far shorter.
 * Version 1 streams (no trailer) are read only with TS_ALLOW_NO_TRAILER.
 * A stream that ends inside a record, a header or a trailer is an error. */
#ifndef SYMBERT_TOKSTREAM_H
#define SYMBERT_TOKSTREAM_H
#include <stddef.h>
#include <stdint.h>
#include "pipeline/sio.h"

#define TS_MAGIC "SBTK"
#define TS_MAGIC_U32 0x4B544253u
#define TS_TRAILER_MAGIC "SBTE"
#define TS_TRAILER_U32 0x45544253u
#define TS_VERSION 2u
#define TS_HEADER_SIZE 48
#define TS_TRAILER_SIZE 32
#define TS_MAX_DOC_TOKENS (1u << 30)
#define TS_CHECKSUM_INIT 0xcbf29ce484222325ull
#define TS_CHECKSUM_PRIME 0x100000001b3ull

typedef struct { uint32_t vocab_size; unsigned char vocab_sha256[32]; } ts_header;
typedef struct { uint64_t documents, tokens, checksum; } ts_totals;

/* Serialises a header into 48 bytes. */
void ts_header_pack(const ts_header *h, unsigned char out[TS_HEADER_SIZE]);
/* Serialises a trailer into 32 bytes. */
void ts_trailer_pack(const ts_totals *t, unsigned char out[TS_TRAILER_SIZE]);
/* Adds whole records, as written (little-endian bytes, len bytes), to t:
 * documents, tokens and the checksum (start t->checksum at TS_CHECKSUM_INIT). */
void ts_totals_add_records(ts_totals *t, const unsigned char *records, size_t len);

enum { TS_ALLOW_NO_TRAILER = 1 };
typedef struct ts_reader ts_reader;
/* Reads over an open sio (which it does not own).  Reads the first header.
 * flags: 0, or TS_ALLOW_NO_TRAILER to take a stream that ends without its
 * trailer (or a version 1 stream) as complete. */
ts_reader *ts_reader_new(sio *in, int flags, char *err, size_t errlen);
const ts_header *ts_reader_header(const ts_reader *r);
/* Next document: *ids valid until the next call.  1 = doc, 0 = end, -1 = error
 * (message names the stream, document number and byte offset).  Each
 * trailer is checked against the documents before it. */
int ts_next(ts_reader *r, const uint16_t **ids, uint32_t *n);
const char *ts_error(const ts_reader *r);
uint64_t ts_docs(const ts_reader *r);
/* After ts_next returned 0: 1 if the input ended without a trailer (only
 * possible with TS_ALLOW_NO_TRAILER), else 0. */
int ts_untrailed(const ts_reader *r);
void ts_reader_free(ts_reader *r);
#endif
