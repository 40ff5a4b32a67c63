/*
 * Fuzz target: files_map_path, which turns the (undecoded) request path
 * into a file name below --static-dir, and files_content_type.
 *
 * Invariants, beyond "no memory error, no UB":
 *  - a mapped name is NUL-terminated inside out, relative, and has no ".",
 *    ".." or empty segment, no backslash and no NUL: it cannot leave the root;
 *  - it is what a small independent model gives: no NUL, percent-decode
 *    (no bad escape, no %00), drop empty segments, refuse "." and "..", add
 *    "index.html" after a trailing '/'. Whenever the model's answer fits
 *    comfortably, files_map_path must give exactly it; whenever
 *    files_map_path gives a name, the model must agree;
 *  - files_hidden says a mapped name is hidden exactly when the model saw a
 *    segment starting with '.' (so /.env, /%2egit/config, /a//.b/ are
 *    refused by files_read), and files_hidden of the raw input agrees with
 *    a byte-by-byte model.
 * It runs with the server's 1024-byte buffer and with a size the input
 * picks, each an exact-size heap block.
 */
#include "autoconfig.h"

#include "files.h"
#include "fuzz.h"

#define SERVER_OUTLEN 1024

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The model: the mapped name into a malloc'd string, or NULL; *hidden set
 * when a segment starts with '.'. */
static char *model(const char *path, size_t len, size_t *out_len, bool *hidden)
{
	char *dec = fuzz_alloc(len + 1), *out = fuzz_alloc(len + sizeof("/index.html"));
	size_t n = 0, o = 0, i = 0;

	if (len == 0 || path[0] != '/' || memchr(path, '\0', len))
		goto bad;
	for (size_t k = 0; k < len; k++) {
		char c = path[k];

		if (c == '%') {
			int hi, lo;

			if (k + 2 >= len || (hi = hex(path[k + 1])) < 0 || (lo = hex(path[k + 2])) < 0)
				goto bad;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				goto bad;
			k += 2;
		}
		dec[n++] = c;
	}
	while (i < n) {
		size_t s;

		while (i < n && dec[i] == '/')
			i++;
		if (i == n)
			break;
		s = i;
		while (i < n && dec[i] != '/')
			i++;
		if ((i - s == 1 && dec[s] == '.') || (i - s == 2 && dec[s] == '.' && dec[s + 1] == '.'))
			goto bad;
		if (memchr(dec + s, '\\', i - s))
			goto bad;
		if (dec[s] == '.')
			*hidden = true;
		if (o)
			out[o++] = '/';
		memcpy(out + o, dec + s, i - s);
		o += i - s;
	}
	if (dec[n - 1] == '/') {
		if (o)
			out[o++] = '/';
		memcpy(out + o, "index.html", 10);
		o += 10;
	}
	out[o] = '\0';
	free(dec);
	*out_len = o;
	return out;
bad:
	free(dec);
	free(out);
	return NULL;
}

static void check_map(const char *path, size_t len, size_t outlen)
{
	char *out = fuzz_alloc(outlen);
	size_t want_len = 0;
	bool hidden = false;
	char *want = model(path, len, &want_len, &hidden);
	long n;

	n = files_map_path(path, len, out, outlen);
	FUZZ_CHECK(n >= 0 || n == FILES_ERR_BAD_PATH);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n < outlen && out[n] == '\0' && strlen(out) == (size_t)n);
		FUZZ_CHECK(n > 0 && out[0] != '/' && out[n - 1] != '/');
		FUZZ_CHECK(strstr(out, "//") == NULL && strchr(out, '\\') == NULL);
		FUZZ_CHECK(strcmp(out, "..") != 0 && strncmp(out, "../", 3) != 0);
		FUZZ_CHECK(strstr(out, "/../") == NULL && strstr(out, "/./") == NULL);
		FUZZ_CHECK(strcmp(out, ".") != 0 && strncmp(out, "./", 2) != 0);
		FUZZ_CHECK(n < 3 || strcmp(out + n - 3, "/..") != 0);
		FUZZ_CHECK(n < 2 || strcmp(out + n - 2, "/.") != 0);
		FUZZ_CHECK(files_content_type(out) != NULL);
		FUZZ_CHECK(want != NULL && want_len == (size_t)n && memcmp(want, out, want_len) == 0);
		FUZZ_CHECK(files_hidden(out) == hidden);
	} else if (want && want_len + 3 < outlen && len < 4000) {
		/* The model says yes with room to spare: so must the real thing. */
		fprintf(stderr, "model maps to '%s', files_map_path refuses\n", want);
		FUZZ_CHECK(0);
	}
	free(want);
	free(out);
}

/* files_hidden on any string (the input up to its first NUL): a '.' at
 * the start or after a '/'. */
static void check_hidden(const uint8_t *data, size_t size)
{
	char *s = fuzz_alloc(size + 1);
	bool want = false;

	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	for (size_t i = 0; s[i]; i++)
		want |= s[i] == '.' && (i == 0 || s[i - 1] == '/');
	FUZZ_CHECK(files_hidden(s) == want);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);

	check_hidden(data, size);
	check_map(buf, size, SERVER_OUTLEN);
	check_map(buf, size, size ? data[size - 1] % 64u : 0);
	free(buf);
	return 0;
}
