/* Static files: dotfiles and dot-directories are never served (issue 8,
 * finding 8: /.env and /.git/config returned 200), and the open-file API a
 * transport streams from. */
#include "autoconfig.h"

#include "files.h"
#include "tap.h"

#include <fcntl.h>
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

int main(void)
{
	char cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_dotfiles();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ok(system(cmd) == 0, "cleanup");
	return done_testing();
}
