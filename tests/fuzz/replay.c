/*
 * replay: runs a fuzz target over files, without libFuzzer, printing TAP.
 *   replay_<target> [FILE|DIR]...
 * With no argument it replays CORPUS_DIR (set at build time to the
 * target's committed corpus), which is how make check runs it. A directory
 * stands for the regular files directly in it, in name order.
 *
 * Each input runs in a child process, so that a crash (a trap on a broken
 * invariant, an ASan report) is one "not ok" naming the file, and the
 * other inputs still run.
 */
#include "autoconfig.h"

#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLAY_MAX_INPUT (16u << 20)

static int n_tests, n_failed;

static void result(bool pass, const char *file, const char *why)
{
	printf("%sok %d - %s%s%s\n", pass ? "" : "not ", ++n_tests, file,
	       why ? ": " : "", why ? why : "");
	if (!pass)
		n_failed++;
	fflush(stdout);
}

/* Reads the whole file into an exact-size heap block. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t cap = 0, n = 0;
	int rc = -1;

	if (!f)
		return -1;
	for (;;) {
		size_t r;

		if (n == cap) {
			uint8_t *grown;

			cap = cap ? cap * 2 : 4096;
			if (cap > REPLAY_MAX_INPUT)
				goto out;
			grown = realloc(data, cap);
			if (!grown)
				goto out;
			data = grown;
		}
		r = fread(data + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f))
		goto out;
	*out = malloc(n);
	if (!*out)
		goto out;
	if (n)
		memcpy(*out, data, n);
	*len = n;
	rc = 0;
out:
	free(data);
	fclose(f);
	return rc;
}

/* path is shown as name (the file's directory's last component and the
 * file name, for a directory argument): TAP lines stay short. */
static void run_one(const char *path, const char *name)
{
	uint8_t *data;
	size_t len;
	pid_t pid;
	int status;
	char why[64];

	if (read_file(path, &data, &len) < 0) {
		result(false, name, "cannot read");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		result(false, name, "fork failed");
		free(data);
		return;
	}
	if (pid == 0) {
		LLVMFuzzerTestOneInput(data, len);
		free(data);
		/* exit, not _exit: LeakSanitizer runs at exit. */
		exit(0);
	}
	free(data);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			result(false, name, "waitpid failed");
			return;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		result(true, name, NULL);
		return;
	}
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(status));
	result(false, name, why);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void run_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	const char *dir;
	int n;

	if (stat(path, &st) < 0) {
		result(false, path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_one(path, path);
		return;
	}
	dir = strrchr(path, '/');
	dir = dir && dir[1] ? dir + 1 : path;
	n = scandir(path, &names, NULL, by_name);
	if (n < 0) {
		result(false, path, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t plen = strlen(path) + 1 + strlen(names[i]->d_name) + 1;
		size_t nlen = strlen(dir) + 1 + strlen(names[i]->d_name) + 1;
		char *file = malloc(plen), *name = malloc(nlen);

		if (!file || !name)
			abort();
		snprintf(file, plen, "%s/%s", path, names[i]->d_name);
		snprintf(name, nlen, "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode))
			run_one(file, name);
		free(name);
		free(file);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i]);
	} else {
#ifdef CORPUS_DIR
		run_path(CORPUS_DIR);
#else
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
#endif
	}
	if (n_tests == 0)
		printf("1..0 # SKIP no input\n");
	else
		printf("1..%d\n", n_tests);
	return n_failed ? 1 : 0;
}
