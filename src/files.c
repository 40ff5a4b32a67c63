#include "autoconfig.h"

#include "files.h"
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

long files_map_path(const char *path, size_t len, char *out, size_t outlen)
{
	char decoded[PATH_MAX];
	long n;
	size_t o = 0;
	const char *p, *end;

	/* A raw NUL would cut the name short where files_read uses it. */
	if (len == 0 || path[0] != '/' || memchr(path, '\0', len))
		return FILES_ERR_BAD_PATH;
	n = http_url_decode(path, len, decoded, sizeof(decoded));
	if (n < 0)
		return FILES_ERR_BAD_PATH;
	p = decoded;
	end = decoded + n;
	while (p < end) {
		const char *slash;
		size_t seg;

		while (p < end && *p == '/')
			p++;
		if (p == end)
			break;
		slash = memchr(p, '/', (size_t)(end - p));
		seg = slash ? (size_t)(slash - p) : (size_t)(end - p);
		if ((seg == 1 && p[0] == '.') || (seg == 2 && p[0] == '.' && p[1] == '.'))
			return FILES_ERR_BAD_PATH;
		if (memchr(p, '\\', seg))
			return FILES_ERR_BAD_PATH;
		if (o + seg + 2 >= outlen)
			return FILES_ERR_BAD_PATH;
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, seg);
		o += seg;
		p += seg;
	}
	if (decoded[n - 1] == '/') {
		static const char index_name[] = "index.html";

		if (o + sizeof(index_name) + 1 >= outlen)
			return FILES_ERR_BAD_PATH;
		if (o)
			out[o++] = '/';
		memcpy(out + o, index_name, sizeof(index_name) - 1);
		o += sizeof(index_name) - 1;
	}
	out[o] = '\0';
	return (long)o;
}

bool files_hidden(const char *rel)
{
	for (const char *p = rel; *p; p++) {
		if (*p == '.' && (p == rel || p[-1] == '/'))
			return true;
	}
	return false;
}

const char *files_content_type(const char *name)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".htm", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".map", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" },
		{ ".gif", "image/gif" },
		{ ".ico", "image/x-icon" },
		{ ".webp", "image/webp" },
		{ ".woff2", "font/woff2" },
		{ ".woff", "font/woff" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');

	if (dot && !strchr(dot, '/')) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			if (strcasecmp(dot, types[i].ext) == 0)
				return types[i].type;
		}
	}
	return "application/octet-stream";
}

int files_read(const char *root, const char *rel, struct buf **out)
{
	char rroot[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
	struct stat st;
	struct buf *b;
	size_t got = 0;
	size_t rlen;
	int fd;

	if (files_hidden(rel))
		return FILES_ERR_NOT_FOUND;
	if (!realpath(root, rroot))
		return FILES_ERR_IO;
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", rroot, rel) >= sizeof(full))
		return FILES_ERR_NOT_FOUND;
	if (!realpath(full, real))
		return FILES_ERR_NOT_FOUND;
	/* Symlinks may point anywhere: serve only what resolves below root. */
	rlen = strlen(rroot);
	if (strncmp(real, rroot, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
		return FILES_ERR_NOT_FOUND;
	/* ... and never to a hidden file (a link "env.txt" -> ".env"); the
	 * root itself may sit below a dot-directory. */
	if (real[rlen] == '/' && files_hidden(real + rlen + 1))
		return FILES_ERR_NOT_FOUND;
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT || errno == EACCES ? FILES_ERR_NOT_FOUND : FILES_ERR_IO;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return FILES_ERR_NOT_FOUND;
	}
	if ((uintmax_t)st.st_size > FILES_MAX_SIZE) {
		close(fd);
		return FILES_ERR_TOO_LARGE;
	}
	b = buf_new((size_t)st.st_size);
	if (!b) {
		close(fd);
		return FILES_ERR_IO;
	}
	while (got < b->len) {
		ssize_t r = read(fd, b->data + got, b->len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	b->len = got;
	*out = b;
	return 0;
}
