/* vocab.h - the WordPiece vocabulary: one token per line, the line number
 * (0-based) is the id.
 *
 * Shared by wordpiece (tokenising), shard-pack (decoding samples for
 * inspection) and oscar-fetch (where to put the downloaded vocab).  Lookup is
 * an open-addressing hash table over the token bytes; the sha256 of the file
 * identifies the vocab in token streams and shard manifests.
 *
 * Lines are read as Hugging Face's WordPiece.read_file reads them: the
 * trailing white space of each line (including a '\r') is dropped, and when a
 * token appears twice the later line's id wins the lookup. */
#ifndef SYMBERT_VOCAB_H
#define SYMBERT_VOCAB_H
#include <stddef.h>
#include <stdint.h>

typedef struct wp_vocab wp_vocab;

/* Loads path.  Returns NULL with a one-line message in err on error (cannot
 * open, read error, empty file, more than 65536 tokens would not fit the u16
 * token stream: that is allowed here, the writer checks). */
wp_vocab *wp_vocab_load(const char *path, char *err, size_t errlen);
uint32_t wp_vocab_size(const wp_vocab *v);
/* The token of id (NUL-terminated), NULL if id is out of range. */
const char *wp_vocab_token(const wp_vocab *v, uint32_t id);
/* The id of the len bytes at tok, -1 if absent. */
int wp_vocab_id(const wp_vocab *v, const char *tok, size_t len);
/* sha256 of the file's bytes (32 bytes). */
const unsigned char *wp_vocab_sha256(const wp_vocab *v);
void wp_vocab_free(wp_vocab *v);

/* Where to look when --vocab is not given: $SYMBERT_VOCAB, then the default
 * path ${XDG_DATA_HOME:-$HOME/.local/share}/symbert/vocab.txt.  `given` (the
 * --vocab argument) wins when non-NULL.  Writes the chosen path to out;
 * returns 0, or -1 with a one-line message that says how to get the vocab
 * ("run: oscar-fetch vocab" or "pass --vocab FILE") when the file chosen does
 * not exist or cannot be read. */
int wp_vocab_locate(const char *given, char *out, size_t outlen, char *err, size_t errlen);
/* The default path alone (no existence check); returns 0, or -1 when neither
 * XDG_DATA_HOME nor HOME is set or the path does not fit. */
int wp_vocab_default_path(char *out, size_t outlen);

#define WP_BERT_UNCASED_SHA256 "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
#endif
