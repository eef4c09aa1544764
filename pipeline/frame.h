/* frame.h - begin and end records around a JSON Lines stream, so that the
 * reader at the other end of a pipe can tell a stream that ended because its
 * writer finished from one whose writer died: a pipe carries no exit status.
 *
 *   {"symbert_stream":"begin","writer":"oscar-filter"}
 *   ... the documents, one JSON object a line ...
 *   {"symbert_stream":"end","writer":"oscar-filter","lines":364}
 *
 * Writers add them only on request (oscar-fetch --stdout --frame,
 * oscar-filter --frame): other readers of the JSONL would see two extra
 * lines.  Readers (oscar-filter, wordpiece) always recognise them: a line
 * that starts with exactly {"symbert_stream": is a record, never a document.
 * Once an input has shown a begin record, it must show the matching end
 * record before it ends; "lines", when present, is the number of lines in
 * between.  An input without records is read as before.  Several framed
 * streams may follow one another (cat a.jsonl b.jsonl). */
#ifndef SYMBERT_FRAME_H
#define SYMBERT_FRAME_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FRAME_KEY "{\"symbert_stream\":"
#define FRAME_KEY_LEN 18

typedef struct {
    int open;               /* a begin record was read, its end not yet */
    uint64_t lines;         /* lines since the begin record */
    uint64_t begin_line;    /* line number of the open begin record */
} frame_state;

/* Is this line a begin or end record? */
static inline int frame_is_record(const char *line, size_t n) {
    return n >= FRAME_KEY_LEN && line[0] == '{' && !memcmp(line, FRAME_KEY, FRAME_KEY_LEN);
}
/* A record read at line `lineno` of input `name`: updates f.  Returns 0, or
 * -1 with a one-line message (file and line) for a bad or unexpected record. */
int frame_record(frame_state *f, const char *line, size_t n, const char *name, uint64_t lineno, char *err, size_t errlen);
/* The input ended: -1 with a message if a begin record is still open. */
int frame_finish(frame_state *f, const char *name, char *err, size_t errlen);
/* The records, newline-terminated, into buf (at least 128 bytes); returns the
 * length.  lines < 0: the end record says nothing of the line count. */
size_t frame_begin(char *buf, size_t cap, const char *writer);
size_t frame_end(char *buf, size_t cap, const char *writer, int64_t lines);
#endif
