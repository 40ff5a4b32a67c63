#include "autoconfig.h"
#include "conffile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

int config_parse_text(const char *text, size_t len, config_file_fn *fn, void *ud,
		      char *err, size_t errlen)
{
	size_t i = 0;
	unsigned line = 0;
	char key[64], *value = NULL;
	int rc = 0;

	value = malloc(len + 1);
	if (!value) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (i < len && rc == 0) {
		size_t eol = i, k = 0, v = 0;
		char msg[256];

		line++;
		while (eol < len && text[eol] != '\n')
			eol++;
		while (i < eol && is_space(text[i]))
			i++;
		if (i == eol || text[i] == '#')
			goto next;
		while (i < eol && is_key_char(text[i])) {
			if (k + 1 >= sizeof(key)) {
				snprintf(err, errlen, "line %u: key too long", line);
				rc = -1;
				goto next;
			}
			key[k++] = text[i++];
		}
		key[k] = '\0';
		if (k == 0) {
			snprintf(err, errlen, "line %u: expected a key, found '%c'", line, text[i]);
			rc = -1;
			goto next;
		}
		while (i < eol && is_space(text[i]))
			i++;
		if (i < eol && text[i] == '=')
			i++;
		while (i < eol && is_space(text[i]))
			i++;
		if (i < eol && text[i] == '\'') {
			bool closed = false;

			i++;
			while (i < eol) {
				char c = text[i++];

				if (c == '\'' && i < eol && text[i] == '\'') {
					value[v++] = '\'';
					i++;
				} else if (c == '\\' && i < eol && text[i] == '\'') {
					value[v++] = '\'';
					i++;
				} else if (c == '\'') {
					closed = true;
					break;
				} else {
					value[v++] = c;
				}
			}
			if (!closed) {
				snprintf(err, errlen, "line %u: unterminated quoted value for %s", line, key);
				rc = -1;
				goto next;
			}
		} else {
			while (i < eol && !is_space(text[i]) && text[i] != '#') {
				if (text[i] == '\'') {
					snprintf(err, errlen, "line %u: a quote inside the bare value of %s", line, key);
					rc = -1;
					goto next;
				}
				value[v++] = text[i++];
			}
			if (v == 0) {
				snprintf(err, errlen, "line %u: no value for %s", line, key);
				rc = -1;
				goto next;
			}
		}
		value[v] = '\0';
		while (i < eol && is_space(text[i]))
			i++;
		if (i < eol && text[i] != '#') {
			snprintf(err, errlen, "line %u: unexpected text after the value of %s", line, key);
			rc = -1;
			goto next;
		}
		if (memchr(value, '\0', v)) {
			snprintf(err, errlen, "line %u: a NUL byte in the value of %s", line, key);
			rc = -1;
			goto next;
		}
		msg[0] = '\0';
		if (fn(ud, key, value, line, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "line %u: %s", line, msg);
			rc = -1;
		}
next:
		i = eol + 1;
	}
	free(value);
	return rc;
}
