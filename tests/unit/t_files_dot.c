/* Static files: dotfiles and dot-directories are never served (issue 8,
 * finding 8: /.env and /.git/config returned 200), and the open-file API a
 * transport streams from. */
#include "autoconfig.h"

#include "files.h"
#include "tap.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/pgpush-t_files_dot-XXXXXX";

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static void sub(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	mkdir(path, 0700);
}

static void link_to(const char *target, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (symlink(target, path) != 0)
		perror(path);
}

/* files_read's answer for the file the request path maps to (the mapping
 * and the read, as the server does them). */
static int get(const char *reqpath)
{
	char rel[1024];
	struct buf *b = NULL;
	long n = files_map_path(reqpath, strlen(reqpath), rel, sizeof(rel));
	int rc;

	if (n < 0)
		return (int)n;
	rc = files_read(dir, rel, &b);
	buf_unref(b);
	return rc;
}

static void test_dotfiles(void)
{
	sub(".git");
	put(".git/config", "[remote \"origin\"]\n\turl = https://token@example.com/x\n");
	put(".env", "DATABASE_URL=postgres://u:secret@db/shop\n");
	put(".htpasswd", "admin:x\n");
	sub(".well-known");
	put(".well-known/security.txt", "Contact: x\n");
	sub("assets");
	put("assets/.DS_Store", "x");
	put("assets/app.js", "1;");
	sub("assets/v1.2");
	put("assets/v1.2/app.min.js", "2;");
	put("index.html", "<h1>hi</h1>");
	put("a.b.c", "ok");
	/* Innocent names that resolve to hidden files. */
	link_to(".env", "env.txt");
	link_to(".git", "git");
	link_to("assets/.DS_Store", "store");

	is_int(get("/index.html"), 0, "an ordinary file is served");
	is_int(get("/"), 0, "the index is served");
	is_int(get("/assets/app.js"), 0, "a file in a directory is served");
	is_int(get("/assets/v1.2/app.min.js"), 0, "a dot inside a name is fine");
	is_int(get("/a.b.c"), 0, "dots inside a file name are fine");

	is_int(get("/.env"), FILES_ERR_NOT_FOUND, "/.env: not found");
	is_int(get("/.git/config"), FILES_ERR_NOT_FOUND, "/.git/config: not found");
	is_int(get("/.git/"), FILES_ERR_NOT_FOUND, "/.git/ (its index): not found");
	is_int(get("/.htpasswd"), FILES_ERR_NOT_FOUND, "/.htpasswd: not found");
	is_int(get("/.well-known/security.txt"), FILES_ERR_NOT_FOUND, "/.well-known/: not found (any dot component)");
	is_int(get("/assets/.DS_Store"), FILES_ERR_NOT_FOUND, "a dotfile in a subdirectory: not found");
	is_int(get("/%2eenv"), FILES_ERR_NOT_FOUND, "/%%2eenv (encoded dot): not found");
	is_int(get("/%2Egit/config"), FILES_ERR_NOT_FOUND, "/%%2Egit/config: not found");
	is_int(get("//.env"), FILES_ERR_NOT_FOUND, "//.env: not found");
	is_int(get("/assets//.DS_Store"), FILES_ERR_NOT_FOUND, "/assets//.DS_Store: not found");
	is_int(get("/env.txt"), FILES_ERR_NOT_FOUND, "a symlink to .env: not found");
	is_int(get("/git/config"), FILES_ERR_NOT_FOUND, "a symlink to the .git directory: not found");
	is_int(get("/store"), FILES_ERR_NOT_FOUND, "a symlink to a dotfile in a subdirectory: not found");
	is_int(get("/.missing"), FILES_ERR_NOT_FOUND, "a missing dotfile: the same answer");
}

/* A file of n bytes whose byte i is (i * 7 + i / 256) & 0xff. */
static void pattern(const char *rel, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	for (size_t i = 0; i < n; i++)
		fputc((int)((i * 7 + i / 256) & 0xff), f);
	fclose(f);
}

static bool pattern_ok(const unsigned char *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != (unsigned char)(((off + i) * 7 + (off + i) / 256) & 0xff))
			return false;
	}
	return true;
}

static void test_open_chunks(void)
{
	static unsigned char chunk[FILES_CHUNK_SIZE];
	const size_t size = 3 * FILES_CHUNK_SIZE + 3392;
	struct files_file f, g;
	char path[512];
	uint64_t off = 0;
	unsigned reads = 0;
	bool same = true;
	long n;
	int fd;

	pattern("big.bin", size);
	is_int(files_open(dir, "big.bin", &f), 0, "files_open: a regular file");
	is_int(f.size, size, "its size");
	ok(f.fd >= 0, "a descriptor");
	while ((n = files_read_chunk(&f, off, chunk, sizeof(chunk))) > 0) {
		same &= pattern_ok(chunk, (size_t)off, (size_t)n);
		off += (uint64_t)n;
		reads++;
	}
	is_int(n, 0, "0 at the end");
	is_int(off, size, "chunks add up to the size");
	is_int(reads, 4, "in 4 chunks of at most FILES_CHUNK_SIZE");
	ok(same, "the bytes of every chunk are the file's");
	is_int(files_read_chunk(&f, 100, chunk, 10), 10, "a read anywhere (pread)");
	ok(pattern_ok(chunk, 100, 10), "... the right bytes");
	is_int(files_read_chunk(&f, size + 5, chunk, 10), 0, "a read past the end: 0");
	is_int(files_read_chunk(&f, size - 4, chunk, 10), 4, "a read across the end stops at it");

	/* The file changes while it is being sent. */
	snprintf(path, sizeof(path), "%s/big.bin", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "more", 4) == 4, "the file grows");
	is_int(files_read_chunk(&f, size - 2, chunk, 10), 2, "never past the size at open (the Content-Length)");
	ok(ftruncate(fd, 1000) == 0, "the file shrinks to 1000 bytes");
	close(fd);
	is_int(files_read_chunk(&f, 990, chunk, 100), 10, "a short read where it ends now");
	is_int(files_read_chunk(&f, 5000, chunk, 100), 0, "0 past its new end: the response cannot be completed");
	files_close(&f);
	is_int(f.fd, -1, "closed");
	files_close(&f);
	files_close(NULL);
	ok(1, "files_close twice and on NULL: no-ops");
	is_int(files_read_chunk(&f, 0, chunk, 10), FILES_ERR_IO, "a read on a closed file: FILES_ERR_IO");

	is_int(files_open(dir, ".env", &g), FILES_ERR_NOT_FOUND, "files_open: a dotfile is not found");
	is_int(g.fd, -1, "... and out->fd is -1");
	is_int(files_open(dir, "env.txt", &g), FILES_ERR_NOT_FOUND, "files_open: a symlink to a dotfile is not found");
	is_int(files_open(dir, "assets", &g), FILES_ERR_NOT_FOUND, "files_open: a directory is not found");
	is_int(files_open(dir, "nope", &g), FILES_ERR_NOT_FOUND, "files_open: a missing file is not found");
	snprintf(path, sizeof(path), "%s/huge.bin", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ok(fd >= 0 && ftruncate(fd, FILES_MAX_SIZE + 1) == 0, "a sparse file of FILES_MAX_SIZE + 1 bytes");
	close(fd);
	is_int(files_open(dir, "huge.bin", &g), FILES_ERR_TOO_LARGE, "files_open: over FILES_MAX_SIZE");
	is_int(g.fd, -1, "... and out->fd is -1");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ok(mkfifo(path, 0600) == 0, "a FIFO in the root");
	is_int(files_open(dir, "fifo", &g), FILES_ERR_NOT_FOUND, "files_open: a FIFO is not found, and does not block");
}

int main(void)
{
	char cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_dotfiles();
	test_open_chunks();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ok(system(cmd) == 0, "cleanup");
	return done_testing();
}
