/* vocab.h - the WordPiece vocabulary: one token per line, the line number
 * (0-based) is the id.
 *
 * Shared by wordpiece (tokenising), shard-pack (decoding samples for
 * inspection, checking a manifest's vocab) and oscar-fetch (where to put the
 * downloaded vocab).  Lookup is an open-addressing hash table over the token
 * bytes; the sha256 of the file identifies the vocab in token streams and
 * shard manifests.
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

/* Where a tool finds its vocab (tokenizer/vocab_locate.c): the first of
 *   1. given (the --vocab argument), when non-NULL and non-empty;
 *   2. $SYMBERT_VOCAB, when set and non-empty;
 *   3. wp_vocab_default_path(), where `oscar-fetch vocab` puts it, if it exists;
 *   4. wp_vocab_shipped_path(NULL), the copy that ships with the tools, if it exists.
 * A path given by 1 or 2 must be readable: it is never passed over for 3 or 4.
 * Writes the chosen path to out; returns 0, or -1 with a one-line message in
 * err that names what was tried and how to get a vocab. */
int wp_vocab_locate(const char *given, char *out, size_t outlen, char *err, size_t errlen);
/* ${XDG_DATA_HOME:-$HOME/.local/share}/symbert/vocab.txt (no existence
 * check); returns 0, or -1 when neither is set or the path does not fit. */
int wp_vocab_default_path(char *out, size_t outlen);
/* PREFIX/share/symbert/vocab.txt, where PREFIX is the folder above the one
 * that holds exe (NULL: this program, /proc/self/exe, symbolic links
 * resolved).  `make` puts a copy of data/vocab/ at build/<variant>/share/
 * symbert/vocab.txt, beside build/<variant>/bin (which bin/ links to), and
 * `make install PREFIX=P` at P/share/symbert/vocab.txt.  No existence check;
 * returns 0, or -1 when exe cannot be read or the path does not fit. */
int wp_vocab_shipped_path(const char *exe, char *out, size_t outlen);

#define WP_BERT_UNCASED_SHA256 "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
#endif
