#include "autoconfig.h"

#include "snapshot.h"
#include "jsonpatch.h"
#include "pmd.h"
#include "util.h"
#include "ws.h"

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

long snapshot_json_string(const char *s, char *dst, size_t dstlen)
{
	json_object *str = json_object_new_string(s);
	const char *txt;
	size_t n;

	if (!str)
		return -1;
	txt = json_object_to_json_string_ext(str, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = strlen(txt);
	if (n + 1 > dstlen) {
		json_object_put(str);
		return -1;
	}
	memcpy(dst, txt, n + 1);
	json_object_put(str);
	return (long)n;
}

size_t snapshot_compact_json(const char *in, size_t len, char *out)
{
	size_t o = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (in_string) {
			out[o++] = c;
			if (c == '\\' && i + 1 < len)
				out[o++] = in[++i];
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
			out[o++] = c;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			out[o++] = c;
		}
	}
	return o;
}

struct buf *snapshot_event_frame(const char *event, const char *json, size_t json_len)
{
	return snapshot_event_frame_nsp(NULL, event, json, json_len);
}

struct buf *snapshot_event_frame_nsp(const char *nsp, const char *event, const char *json,
				     size_t json_len)
{
	char head[256];
	int n = nsp && *nsp && strcmp(nsp, "/") != 0
		? snprintf(head, sizeof(head), "42%s,[\"%s\",", nsp, event)
		: snprintf(head, sizeof(head), "42[\"%s\",", event);
	struct ws_part parts[] = {
		{ head, (size_t)n },
		{ json, json_len },
		{ "]", 1 },
	};

	if (n < 0 || (size_t)n >= sizeof(head))
		return NULL;
	return ws_frame_build(WS_OP_TEXT, parts, 3);
}

int snapshot_new(const char *json, size_t len, int64_t version, int64_t generated_ms,
		 const char *reason, struct snapshot **out)
{
	return snapshot_new_nsp(json, len, version, generated_ms, reason, NULL, out);
}

int snapshot_new_nsp(const char *json, size_t len, int64_t version, int64_t generated_ms,
		     const char *reason, const char *nsp, struct snapshot **out)
{
	struct json_tokener *tok;
	json_object *obj;
	char iso[UTIL_ISO_TIME_LEN];
	char reason_json[512];
	char head[768];
	const char *body;
	size_t body_len;
	int head_len;
	struct snapshot *s;
	char *compact;
	size_t clen;
	bool empty;

	/* Validate once per recompute: clients must never get broken JSON. */
	tok = json_tokener_new_ex(64);
	if (!tok)
		return SNAPSHOT_ERR_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, json, (int)len);
	if (json_tokener_get_error(tok) == json_tokener_continue)
		obj = json_tokener_parse_ex(tok, "", 1);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_tokener_free(tok);
		json_object_put(obj);
		return SNAPSHOT_ERR_NOT_JSON;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return SNAPSHOT_ERR_NOT_OBJECT;
	}
	empty = json_object_object_length(obj) == 0;
	json_object_put(obj);

	/* Splice our keys in front of the document's own, without re-serializing
	 * it: every token is the DBA's, byte for byte; only the whitespace
	 * between tokens goes (json_build_object writes "k" : v, a sixth of a
	 * dashboard). The text was validated above, so strings are balanced. */
	compact = malloc(len);
	if (!compact)
		return SNAPSHOT_ERR_NOMEM;
	clen = snapshot_compact_json(json, len, compact);
	body = memchr(compact, '{', clen);
	body_len = clen - (size_t)(body - compact) - 1;
	body++;
	if (empty) {
		body = "}";
		body_len = 1;
	}
	util_iso_time(generated_ms, iso);
	if (snapshot_json_string(reason, reason_json, sizeof(reason_json)) < 0)
		snprintf(reason_json, sizeof(reason_json), "\"?\"");
	head_len = snprintf(head, sizeof(head),
			    "{\"version\":%lld,\"generatedAt\":\"%s\",\"reason\":%s%s",
			    (long long)version, iso, reason_json, empty ? "" : ",");
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(compact);
		return SNAPSHOT_ERR_NOMEM;
	}
	s->refs = 1;
	s->zlevel = -1;
	s->body_off = (size_t)head_len;
	s->version = version;
	s->generated_ms = generated_ms;
	s->doc_len = (size_t)head_len + body_len;
	s->doc = malloc(s->doc_len + 1);
	if (!s->doc)
		goto out_free;
	memcpy(s->doc, head, (size_t)head_len);
	memcpy(s->doc + head_len, body, body_len);
	s->doc[s->doc_len] = '\0';
	s->frame = snapshot_event_frame_nsp(nsp, "dashboardDataUpdate", s->doc, s->doc_len);
	if (!s->frame)
		goto out_free_doc;
	free(compact);
	*out = s;
	return 0;

out_free_doc:
	free(s->doc);
out_free:
	free(s);
	free(compact);
	return SNAPSHOT_ERR_NOMEM;
}

int snapshot_deflate(struct snapshot *s, int level)
{
	uint8_t l = s->frame->data[1] & 0x7f;
	size_t hlen = l < 126 ? 2 : l == 126 ? 4 : 10;
	struct ws_part payload = { s->frame->data + hlen, s->frame->len - hlen };
	struct buf *z = pmd_frame(WS_OP_TEXT, &payload, 1, level);

	if (!z)
		return -1;
	s->zlevel = level;
	if (z->len < s->frame->len) {
		buf_unref(s->frame_z);
		s->frame_z = z;
	} else {
		buf_unref(z);
	}
	if (!s->msg && !(s->msg = pmd_msg_new(s->frame, s->frame_z, level)))
		return -1;
	return 0;
}

void snapshot_follow(struct snapshot *s, const struct snapshot *prev)
{
	if (!prev || !s->msg)
		return;
	pmd_msg_keep(s->msg, prev->patch_msg ? prev->patch_msg : prev->msg);
}

bool snapshot_same_document(const struct snapshot *a, const struct snapshot *b)
{
	size_t la = a->doc_len - a->body_off, lb = b->doc_len - b->body_off;

	return la == lb && memcmp(a->doc + a->body_off, b->doc + b->body_off, la) == 0;
}

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A plain frame's compressed twin, kept only when smaller. */
static struct buf *deflate_frame(const struct buf *frame, int level)
{
	uint8_t l = frame->data[1] & 0x7f;
	size_t hlen = l < 126 ? 2 : l == 126 ? 4 : 10;
	struct ws_part payload = { frame->data + hlen, frame->len - hlen };
	struct buf *z = pmd_frame(WS_OP_TEXT, &payload, 1, level);

	if (z && z->len >= frame->len) {
		buf_unref(z);
		z = NULL;
	}
	return z;
}

int snapshot_attach_patch(struct snapshot *s, const struct snapshot *prev, const char *nsp)
{
	struct jsonpatch p = { 0 };
	char head[96];
	struct buf *frame;
	double t0 = cpu_us();
	int n;

	s->patch_from = prev->version;
	if (jsonpatch_diff(prev->doc, prev->doc_len, s->doc, s->doc_len, &p) < 0)
		return -1;
	s->diff_us = cpu_us() - t0;
	s->patch_ops = p.ops;
	if (p.full) {
		s->patch_full = true;
		jsonpatch_clear(&p);
		return 0;
	}
	n = snprintf(head, sizeof(head), "{\"from\":%lld,\"to\":%lld,\"patch\":",
		     (long long)prev->version, (long long)s->version);
	{
		char *json = malloc((size_t)n + p.len + 2);

		if (!json) {
			jsonpatch_clear(&p);
			return -1;
		}
		memcpy(json, head, (size_t)n);
		memcpy(json + n, p.text, p.len);
		json[(size_t)n + p.len] = '}';
		frame = snapshot_event_frame_nsp(nsp, "dashboardDataPatch", json, (size_t)n + p.len + 1);
		free(json);
	}
	s->patch_len = p.len;
	jsonpatch_clear(&p);
	if (!frame)
		return -1;
	s->patch_frame = frame;
	if (s->zlevel >= 0) {
		s->patch_frame_z = deflate_frame(frame, s->zlevel);
		/* Out of memory: members get the plain patch. */
		s->patch_msg = pmd_msg_new(frame, s->patch_frame_z, s->zlevel);
		if (s->patch_msg && s->msg)
			pmd_msg_keep(s->patch_msg, s->msg);
	}
	return 0;
}

void snapshot_unref(struct snapshot *s)
{
	if (!s || --s->refs > 0)
		return;
	pmd_msg_unref(s->patch_msg);
	pmd_msg_unref(s->msg);
	buf_unref(s->patch_frame_z);
	buf_unref(s->patch_frame);
	buf_unref(s->frame_z);
	buf_unref(s->frame);
	free(s->doc);
	free(s);
}
