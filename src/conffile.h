/*
 * conffile: the text of a configuration file (--config) in PostgreSQL's
 * style, parsed into key/value settings handed to a callback. Pure: no I/O,
 * no allocation the caller sees; config reads the file and applies them.
 */
#ifndef PGPUSH_CONFFILE_H
#define PGPUSH_CONFFILE_H

#include <stddef.h>

/* One setting of a configuration file: key and value are NUL-terminated
 * (quotes removed, '' unescaped), valid during the call. line is 1-based.
 * Returns 0, or -1 with a message in err (the caller adds the line). */
typedef int config_file_fn(void *ud, const char *key, const char *value, unsigned line,
			   char *err, size_t errlen);

/* Parses a configuration file's text in PostgreSQL's style: one
 * `key = value` per line (the '=' may be left out), '#' starts a comment
 * outside quotes, a value is a bare word or '...' with '' for a quote and
 * \' too; blank lines are fine. Calls fn for each setting in order. Pure.
 * Returns 0, or -1 with "line N: why" in err. */
int config_parse_text(const char *text, size_t len, config_file_fn *fn, void *ud,
		      char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
