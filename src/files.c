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

int files_open(const char *root, const char *rel, struct files_file *out)
{
	char rroot[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
	struct stat st;
	size_t rlen;
	int fd;

	out->fd = -1;
	out->size = 0;
	if (files_hidden(rel))
		return FILES_ERR_NOT_FOUND;
	if (!realpath(root, rroot))
		return FILES_ERR_IO;
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", rroot, rel) >= sizeof(full))
		return FILES_ERR_NOT_FOUND;
	if (!realpath(full, real))
		return FILES_ERR_NOT_FOUND;
	/* Symlinks may point anywhere: serve only what resolves below root... */
	rlen = strlen(rroot);
	if (strncmp(real, rroot, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
		return FILES_ERR_NOT_FOUND;
	/* ... and never to a hidden file (a link "env.txt" -> ".env"); the
	 * root itself may sit below a dot-directory. */
	if (real[rlen] == '/' && files_hidden(real + rlen + 1))
		return FILES_ERR_NOT_FOUND;
	/* O_NONBLOCK: a FIFO put in the root must not hang the loop in open. */
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
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	out->fd = fd;
	out->size = (uint64_t)st.st_size;
	return 0;
}

long files_read_chunk(const struct files_file *f, uint64_t off, void *dst, size_t len)
{
	size_t got = 0;

	if (f->fd < 0)
		return FILES_ERR_IO;
	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	if (len > LONG_MAX)
		len = LONG_MAX;
	while (got < len) {
		ssize_t r = pread(f->fd, (char *)dst + got, len - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return FILES_ERR_IO;
		if (r == 0)
			break; /* shrank since files_open */
		got += (size_t)r;
	}
	return (long)got;
}

void files_close(struct files_file *f)
{
	if (f && f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
}

int files_read(const char *root, const char *rel, struct buf **out)
{
	struct files_file f;
	struct buf *b;
	long got;
	int rc = files_open(root, rel, &f);

	if (rc < 0)
		return rc;
	b = buf_new((size_t)f.size);
	if (!b) {
		files_close(&f);
		return FILES_ERR_IO;
	}
	got = files_read_chunk(&f, 0, b->data, b->len);
	files_close(&f);
	if (got < 0) {
		buf_unref(b);
		return FILES_ERR_IO;
	}
	b->len = (size_t)got;
	*out = b;
	return 0;
}
