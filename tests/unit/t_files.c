/* Static files: path mapping without escape, content types, reading. */
#include "autoconfig.h"

#include "files.h"
#include "tap.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static long map(const char *path, char *out)
{
	return files_map_path(path, strlen(path), out, 256);
}

int main(void)
{
	char out[256];
	char dir[] = "/tmp/pgpush-t_files-XXXXXX";
	char path[512];
	struct buf *b = NULL;
	FILE *f;

	ok(map("/", out) > 0, "root maps");
	is_str(out, "index.html", "/ is index.html");
	ok(map("/app.js", out) > 0, "file maps");
	is_str(out, "app.js", "leading slash removed");
	ok(map("/sub/dir/", out) > 0 && strcmp(out, "sub/dir/index.html") == 0, "directory index");
	ok(map("//a///b", out) > 0 && strcmp(out, "a/b") == 0, "repeated slashes folded");
	ok(map("/a%20b.txt", out) > 0 && strcmp(out, "a b.txt") == 0, "percent-decoded");
	is_int(map("/../etc/passwd", out), FILES_ERR_BAD_PATH, "dot-dot refused");
	is_int(map("/a/%2e%2e/%2e%2e/etc/passwd", out), FILES_ERR_BAD_PATH, "encoded dot-dot refused");
	is_int(map("/a/./b", out), FILES_ERR_BAD_PATH, "dot segment refused");
	is_int(map("/a%00.html", out), FILES_ERR_BAD_PATH, "encoded NUL refused");
	is_int(map("/a\\..\\b", out), FILES_ERR_BAD_PATH, "backslash refused");
	is_int(map("relative", out), FILES_ERR_BAD_PATH, "relative path refused");

	is_str(files_content_type("index.html"), "text/html; charset=utf-8", "html type");
	is_str(files_content_type("a/app.JS"), "text/javascript; charset=utf-8", "js type, any case");
	is_str(files_content_type("style.css"), "text/css; charset=utf-8", "css type");
	is_str(files_content_type("noext"), "application/octet-stream", "unknown type");

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/index.html", dir);
	f = fopen(path, "w");
	fputs("<h1>hi</h1>", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/escape", dir);
	ok(symlink("/etc/hostname", path) == 0, "symlink out of the root");
	snprintf(path, sizeof(path), "%s/sub", dir);
	mkdir(path, 0700);

	is_int(files_read(dir, "index.html", &b), 0, "reads a file");
	ok(b && b->len == 11 && memcmp(b->data, "<h1>hi</h1>", 11) == 0, "contents");
	buf_unref(b);
	is_int(files_read(dir, "missing.html", &b), FILES_ERR_NOT_FOUND, "missing file");
	is_int(files_read(dir, "escape", &b), FILES_ERR_NOT_FOUND, "symlink leaving the root refused");
	is_int(files_read(dir, "sub", &b), FILES_ERR_NOT_FOUND, "directory refused");

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	ok(system(path) == 0, "cleanup");
	return done_testing();
}
