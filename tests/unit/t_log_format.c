/* Log line formats: text and JSON (--log-format json), with the client's
 * address and connection id. Every JSON line must parse, whatever a peer
 * put in the message, and say the same as the text line. */
#include "autoconfig.h"

#include "log.h"
#include "tap.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STAMP "2026-11-30T19:00:00.123Z"

static char line[16384];

static const char *fmt_line(enum log_format f, enum log_level lv, const struct log_ctx *ctx, const char *msg,
			    size_t outlen)
{
	log_format_line(f, STAMP, lv, ctx, msg, strlen(msg), line, outlen);
	return line;
}

/* The parsed object of a JSON line (with its newline), or NULL. */
static json_object *parse_line(const char *s)
{
	size_t n = strlen(s);
	json_tokener *tok;
	json_object *o;

	if (n == 0 || s[n - 1] != '\n' || memchr(s, '\n', n - 1))
		return NULL;
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, s, (int)n - 1);
	if (json_tokener_get_error(tok) != json_tokener_success || tok->char_offset != (int)n - 1) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *field(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_text(void)
{
	struct log_ctx ctx = { "127.0.0.1:5000", 42 };
	struct log_ctx peer_only = { "[::1]:6000", 0 };

	is_str(fmt_line(LOG_FORMAT_TEXT, LOG_INFO, NULL, "client connected", sizeof(line)),
	       STAMP " info client connected\n", "text: as before");
	is_str(fmt_line(LOG_FORMAT_TEXT, LOG_WARN, &ctx, "client dropped", sizeof(line)),
	       STAMP " warn client dropped peer=127.0.0.1:5000 conn=42\n", "text: peer and conn appended");
	is_str(fmt_line(LOG_FORMAT_TEXT, LOG_ERROR, &peer_only, "x", sizeof(line)),
	       STAMP " error x peer=[::1]:6000\n", "text: conn 0 is left out");
	is_str(fmt_line(LOG_FORMAT_TEXT, LOG_INFO, NULL, "a\nb\\c", sizeof(line)),
	       STAMP " info a\\x0ab\\\\c\n", "text: escaped as log_escape does");
}

static void test_json(void)
{
	struct log_ctx ctx = { "127.0.0.1:5000", 42 };
	static const char *const hostile[] = {
		"plain", "quote \" and backslash \\", "newline\nforged {\"level\":\"error\"}",
		"ctl \x01\x1b[31m\x7f", "bad utf8 \xff\xfe \xc3", "c1 \xc2\x85", "utf8 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		"\\x41 is not A", "",
	};
	size_t i;
	json_object *o;

	is_str(fmt_line(LOG_FORMAT_JSON, LOG_INFO, &ctx, "client connected", sizeof(line)),
	       "{\"time\":\"" STAMP "\",\"level\":\"info\",\"msg\":\"client connected\","
	       "\"peer\":\"127.0.0.1:5000\",\"conn\":42}\n", "json: the documented shape");
	is_str(fmt_line(LOG_FORMAT_JSON, LOG_DEBUG, NULL, "x", sizeof(line)),
	       "{\"time\":\"" STAMP "\",\"level\":\"debug\",\"msg\":\"x\"}\n", "json: no peer, no conn");

	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char text[sizeof(line)];
		const char *msg_in_text;

		fmt_line(LOG_FORMAT_TEXT, LOG_INFO, NULL, hostile[i], sizeof(line));
		memcpy(text, line, strlen(line) + 1);
		text[strlen(text) - 1] = '\0';
		msg_in_text = text + strlen(STAMP " info ");
		o = parse_line(fmt_line(LOG_FORMAT_JSON, LOG_WARN, &ctx, hostile[i], sizeof(line)));
		ok(o != NULL, "json: message %zu is one valid JSON line", i);
		if (o) {
			is_str(field(o, "msg"), msg_in_text, "json: message %zu says what the text line says", i);
			is_str(field(o, "level"), "warn", "json: message %zu level", i);
			json_object_put(o);
		}
	}

	/* A hostile peer string (it comes from the socket address, but the
	 * caller may pass anything). */
	{
		struct log_ctx bad = { "\"}\n{\"x\":\"\xff", 7 };

		o = parse_line(fmt_line(LOG_FORMAT_JSON, LOG_INFO, &bad, "m", sizeof(line)));
		ok(o != NULL, "json: a hostile peer stays inside its string");
		if (o) {
			is_str(field(o, "peer"), "\"}\\x0a{\"x\":\"\\xff", "json: peer escaped like a message");
			is_str(field(o, "conn"), "7", "json: conn");
			json_object_put(o);
		}
	}
}

/* Every buffer size from LOG_LINE_MIN up: the line stays whole. */
static void test_cut(void)
{
	char msg[1100];
	struct log_ctx ctx = { "[2001:db8::1]:65535", 18446744073709551615ULL };
	size_t cap, i;
	bool json_ok = true, text_ok = true;

	for (i = 0; i < sizeof(msg) - 1; i++)
		msg[i] = "a\"\\\n\xc3\xa9\xff"[i % 7];
	msg[sizeof(msg) - 1] = '\0';
	for (cap = LOG_LINE_MIN; cap <= 8192 && (json_ok || text_ok); cap += 7) {
		size_t n = log_format_line(LOG_FORMAT_JSON, STAMP, LOG_INFO, &ctx, msg, strlen(msg), line, cap);
		json_object *o = parse_line(line);

		if (!o || n != strlen(line) || n >= cap || !field(o, "peer")) {
			json_ok = false;
			printf("#   json cap %zu: %s\n", cap, line);
		}
		json_object_put(o);
		n = log_format_line(LOG_FORMAT_TEXT, STAMP, LOG_INFO, &ctx, msg, strlen(msg), line, cap);
		if (n != strlen(line) || n >= cap || !strstr(line, " peer=[2001:db8::1]:65535 conn=18446744073709551615\n")) {
			text_ok = false;
			printf("#   text cap %zu: %s\n", cap, line);
		}
	}
	ok(json_ok, "json: whole and valid at every buffer size from %d", LOG_LINE_MIN);
	ok(text_ok, "text: the tail is kept at every buffer size from %d", LOG_LINE_MIN);
	is_int(log_format_line(LOG_FORMAT_TEXT, STAMP, LOG_INFO, NULL, "x", 1, line, 0), 0, "outlen 0: nothing");
}

/* Through log_msg_ctx and stderr, in JSON. */
static void test_stderr(void)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	struct log_ctx ctx = { "127.0.0.1:1", 9 };
	json_object *o;
	size_t n;

	if (!tmp || saved < 0)
		abort();
	log_set_format(LOG_FORMAT_JSON);
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	log_msg_ctx(LOG_WARN, &ctx, "slow client pending=%d", 123);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_set_format(LOG_FORMAT_TEXT);
	rewind(tmp);
	n = fread(line, 1, sizeof(line) - 1, tmp);
	fclose(tmp);
	line[n] = '\0';
	o = parse_line(line);
	ok(o != NULL, "log_msg_ctx in JSON: one valid line (%s)", o ? "parsed" : line);
	if (o) {
		is_str(field(o, "msg"), "slow client pending=123", "log_msg_ctx: msg");
		is_str(field(o, "peer"), "127.0.0.1:1", "log_msg_ctx: peer");
		json_object_put(o);
	}
}

int main(void)
{
	enum log_format f;

	ok(log_parse_format("json", &f) && f == LOG_FORMAT_JSON, "parse json");
	ok(log_parse_format("text", &f) && f == LOG_FORMAT_TEXT, "parse text");
	ok(!log_parse_format("JSON", &f) && !log_parse_format("", &f), "parse: nothing else");
	test_text();
	test_json();
	test_cut();
	test_stderr();
	return done_testing();
}
