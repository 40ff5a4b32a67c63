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

/* put DIR NAME TEXT: writes a file. */
static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "cannot create %s\n", path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

int main(void)
{
	char out[256];
	char base[] = "/tmp/pgpush-t_files-XXXXXX";
	char root[64], target[128], path[256];
	struct buf *b = NULL;

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

	/* Everything under a temp dir of our own: base/www is the root; the
	 * files the symlinks point at exist, outside it, whatever the host has. */
	ok(mkdtemp(base) != NULL, "temp dir");
	snprintf(root, sizeof(root), "%s/www", base);
	ok(mkdir(root, 0700) == 0, "root dir");
	put(root, "index.html", "<h1>hi</h1>");
	put(base, "secret.txt", "secret");
	snprintf(path, sizeof(path), "%s/www2", base); /* shares the root's name as a prefix */
	ok(mkdir(path, 0700) == 0, "sibling dir");
	put(path, "secret.txt", "secret");

	snprintf(target, sizeof(target), "%s/secret.txt", base);
	snprintf(path, sizeof(path), "%s/escape", root);
	ok(symlink(target, path) == 0, "absolute symlink out of the root");
	snprintf(path, sizeof(path), "%s/escape-rel", root);
	ok(symlink("../secret.txt", path) == 0, "relative symlink out of the root");
	snprintf(path, sizeof(path), "%s/escape-sibling", root);
	ok(symlink("../www2/secret.txt", path) == 0, "symlink into a sibling sharing the root's prefix");
	snprintf(path, sizeof(path), "%s/inside", root);
	ok(symlink("index.html", path) == 0, "symlink within the root");
	snprintf(path, sizeof(path), "%s/sub", root);
	mkdir(path, 0700);

	is_int(files_read(root, "index.html", &b), 0, "reads a file");
	ok(b && b->len == 11 && memcmp(b->data, "<h1>hi</h1>", 11) == 0, "contents");
	buf_unref(b);
	b = NULL;
	is_int(files_read(root, "inside", &b), 0, "a symlink within the root is served");
	ok(b && b->len == 11 && memcmp(b->data, "<h1>hi</h1>", 11) == 0, "  with its target's contents");
	buf_unref(b);
	b = NULL;
	is_int(files_read(root, "missing.html", &b), FILES_ERR_NOT_FOUND, "missing file");
	is_int(files_read(root, "escape", &b), FILES_ERR_NOT_FOUND, "absolute symlink leaving the root refused");
	is_int(files_read(root, "escape-rel", &b), FILES_ERR_NOT_FOUND, "relative symlink leaving the root refused");
	is_int(files_read(root, "escape-sibling", &b), FILES_ERR_NOT_FOUND,
	       "symlink into a sibling sharing the root's prefix refused");
	is_int(files_read(root, "sub", &b), FILES_ERR_NOT_FOUND, "directory refused");

	snprintf(path, sizeof(path), "rm -rf '%s'", base);
	ok(system(path) == 0, "cleanup");
	return done_testing();
}
