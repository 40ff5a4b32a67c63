/* Snapshots: the document with version, generatedAt and reason spliced in,
 * validation of the query's JSON, the shared frame. */
#include "autoconfig.h"

#include "config.h"
#include "dashboard.h"
#include "dashboard_int.h"
#include "hub.h"
#include "jsonpatch.h"
#include "jsonvalue.h"
#include "snapshot.h"
#include "tap.h"

#include <json-c/json.h>

/* /healthz: always one complete JSON object, whatever the buffer and the
 * error; only the status unless detailed. The database is unreachable (a
 * socket directory that does not exist), so a db_unavailable error with a
 * long libpq message is set. */
static void test_health(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct config cfg;
	struct hub hub;
	struct dashboard *d;
	char dir[300], arg[400], err[256];
	char prog[] = "pgpushd", flag[] = "--db";
	char *argv[] = { prog, flag, arg, NULL };
	char out[1024];
	bool all_valid = true, all_fit = true, detail_seen = false;

	memset(dir, 'd', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	snprintf(arg, sizeof(arg), "host=%s port=1 dbname=\"quote\\\"s\"", dir);
	if (config_parse(&cfg, 3, argv, NULL, NULL, err, sizeof(err)) != CONFIG_OK) {
		ok(0, "config: %s", err);
		return;
	}
	if (hub_init(&hub) < 0)
		abort();
	d = dashboard_new(loop, &cfg, &hub);
	for (int i = 0; i < 20 && !hub.main_feed->error_json; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ok(hub.main_feed->error_json != NULL, "the unreachable database sets an error");
	ok(hub.main_feed->error_json && !strstr(hub.main_feed->error_json, "ddd"), "clients do not see libpq's message");
	for (size_t len = 32; len <= sizeof(out); len++) {
		json_object *o;

		memset(out, 'X', sizeof(out));
		(void)dashboard_health(d, true, out, len);
		if (strlen(out) >= len)
			all_fit = false;
		o = json_tokener_parse(out);
		if (!o || !json_object_is_type(o, json_type_object))
			all_valid = false;
		if (o && json_object_object_get_ex(o, "lastError", NULL) && strstr(out, "ddd"))
			detail_seen = true;
		json_object_put(o);
	}
	ok(all_valid, "detailed /healthz is valid JSON in every buffer from 32 to 1024 bytes");
	ok(all_fit, "and always fits");
	ok(detail_seen, "the detail is there when it fits");
	dashboard_health(d, false, out, sizeof(out));
	is_str(out, "{\"status\":\"unavailable\"}", "not detailed: the status only");
	dashboard_free(d);
	hub_free(&hub);
	config_free(&cfg);
	ev_loop_destroy(loop);
}

/* Shutdown frees the dashboard, then the hub. A feed still waiting for a
 * version draw (a recompute in flight at SIGTERM) must not stay linked into
 * the freed dashboard's queue: freeing it would write into freed memory
 * (what the ASan pass of ./quickstart test caught). */
static void test_free_with_draw_queued(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct config cfg;
	struct hub hub;
	struct dashboard *d;
	char err[256], prog[] = "pgpushd", flag[] = "--db", arg[] = "host=/nonexistent port=1";
	char *argv[] = { prog, flag, arg, NULL };
	struct hub_feed *f;

	if (config_parse(&cfg, 3, argv, NULL, NULL, err, sizeof(err)) != CONFIG_OK || hub_init(&hub) < 0)
		abort();
	d = dashboard_new(loop, &cfg, &hub);
	f = hub.main_feed;
	list_push_back(&d->vqueue, &f->vlink);
	f->in_vqueue = true;
	dashboard_free(d);
	ok(!f->in_vqueue && !list_linked(&f->vlink), "the dashboard unlinks the feeds of its draw queue");
	hub_free(&hub);
	config_free(&cfg);
	ev_loop_destroy(loop);
}

/* Unchanged documents and the patch frames (issue 10). */
static void test_deltas(void)
{
	struct snapshot *a = NULL, *b = NULL, *c = NULL, *big1 = NULL, *big2 = NULL;
	char *pad1 = malloc(4200), *pad2 = malloc(4200);
	char *applied = NULL;
	size_t applied_len = 0;
	const char *p;

	is_int(snapshot_new("{\"n\": 1, \"s\": [1, 2]}", 21, 10, 0, "startup", &a), 0, "a");
	is_int(snapshot_new("{\"n\":1,\"s\":[1,2]}", 17, 11, 5, "timer", &b), 0, "b: same tokens, other whitespace");
	is_int(snapshot_new("{\"n\":2,\"s\":[1,2]}", 17, 12, 5, "notify:t", &c), 0, "c: n changed");
	ok(snapshot_same_document(a, b), "version, generatedAt, reason and whitespace aside, a and b are the same");
	ok(!snapshot_same_document(a, c), "a and c differ");
	is_int(snapshot_attach_patch(c, b, "/"), 0, "a patch for a tiny document");
	ok(c->patch_full && !c->patch_frame, "not smaller than the document: no frame, the document goes");

	/* A document with room: the patch is a frame of its own. */
	snprintf(pad1, 4200, "{\"pad\":\"%04000d\",\"n\":1,\"rows\":[{\"id\":1},{\"id\":2}]}", 0);
	snprintf(pad2, 4200, "{\"pad\":\"%04000d\",\"n\":2,\"rows\":[{\"id\":3},{\"id\":1}]}", 0);
	is_int(snapshot_new(pad1, strlen(pad1), 20, 0, "startup", &big1), 0, "big1");
	is_int(snapshot_new_nsp(pad2, strlen(pad2), 21, 1000, "notify:t", "/ops", &big2), 0, "big2 on /ops");
	is_int(snapshot_deflate(big2, 1), 0, "big2 compressed");
	is_int(snapshot_attach_patch(big2, big1, "/ops"), 0, "patch attached");
	ok(!big2->patch_full && big2->patch_frame && big2->patch_frame_z, "plain and compressed patch frames");
	is_int(big2->patch_from, 20, "from the previous version");
	ok(big2->patch_frame && big2->patch_frame->len < 1000, "far smaller than the 4 KB document: %zu bytes",
	   big2->patch_frame ? big2->patch_frame->len : 0);
	if (big2->patch_frame) {
		const struct buf *f = big2->patch_frame;
		size_t hlen = (f->data[1] & 0x7f) < 126 ? 2 : 4;
		const char *want = "42/ops,[\"dashboardDataPatch\",{\"from\":20,\"to\":21,\"patch\":[";

		ok(memcmp(f->data + hlen, want, strlen(want)) == 0, "framed in the namespace with from and to");
		p = (const char *)f->data + hlen + strlen(want) - 1;
		/* The patch array runs to the "}]" that closes the frame. */
		is_int(jsonvalue_apply(big1->doc, big1->doc_len, p, f->len - hlen - strlen(want) + 1 - 2,
				       &applied, &applied_len), 0, "the patch applies to the previous document");
		ok(applied && jsonvalue_equal(applied, applied_len, big2->doc, big2->doc_len),
		   "and yields the new one, version, generatedAt and reason included");
		free(applied);
	}
	snapshot_unref(a);
	snapshot_unref(b);
	snapshot_unref(c);
	snapshot_unref(big1);
	snapshot_unref(big2);
	free(pad1);
	free(pad2);
}

int main(void)
{
	struct snapshot *s = NULL;
	const char *doc = "{\"summary\" : {\"salesToday\" : 3}}";
	char reason[64];

	is_int(snapshot_new(doc, strlen(doc), 42, 0, "notify:sales", &s), 0, "snapshot built");
	is_str(s->doc, "{\"version\":42,\"generatedAt\":\"1970-01-01T00:00:00.000Z\",\"reason\":\"notify:sales\",\"summary\":{\"salesToday\":3}}",
	       "keys spliced in front, the DBA's tokens kept, whitespace between them dropped");
	{
		const char *want_payload = "42[\"dashboardDataUpdate\",";
		size_t plen = s->frame->len - 4; /* 16-bit length header */

		ok(s->frame->data[0] == 0x81 && s->frame->data[1] == 126, "text frame, 16-bit length");
		is_int((s->frame->data[2] << 8) | s->frame->data[3], plen, "frame length matches");
		ok(memcmp(s->frame->data + 4, want_payload, strlen(want_payload)) == 0 &&
		   s->frame->data[s->frame->len - 1] == ']', "frame is 42[\"dashboardDataUpdate\",<doc>]");
	}
	snapshot_unref(s);

	is_int(snapshot_new("{}", 2, 1, 1500, "timer", &s), 0, "empty object");
	is_str(s->doc, "{\"version\":1,\"generatedAt\":\"1970-01-01T00:00:01.500Z\",\"reason\":\"timer\"}",
	       "no dangling comma for an empty document");
	snapshot_unref(s);

	is_int(snapshot_new("  {\"a\":1}\n", 10, 1, 0, "a\"b", &s), 0, "whitespace around the object");
	ok(strstr(s->doc, "\"reason\":\"a\\\"b\"") != NULL, "reason is escaped: %s", s->doc);
	snapshot_unref(s);

	{
		static const char in[] = "{ \"a b\" : [ 1 , 2.50 ] ,\n\t\"q\\\" x\" : \"  keep  \\\\\" }";
		char out[sizeof(in)];
		size_t n = snapshot_compact_json(in, sizeof(in) - 1, out);

		is_mem(out, n, "{\"a b\":[1,2.50],\"q\\\" x\":\"  keep  \\\\\"}",
		       "whitespace inside strings and escaped quotes survive compaction");
	}

	is_int(snapshot_new("[1,2]", 5, 1, 0, "x", &s), SNAPSHOT_ERR_NOT_OBJECT, "array refused");
	is_int(snapshot_new("{\"a\":", 5, 1, 0, "x", &s), SNAPSHOT_ERR_NOT_JSON, "truncated JSON refused");
	is_int(snapshot_new("{\"a\":1} x", 9, 1, 0, "x", &s), SNAPSHOT_ERR_NOT_JSON, "trailing garbage refused");
	is_int(snapshot_new("{\"a\":\"\xff\"}", 9, 1, 0, "x", &s), SNAPSHOT_ERR_NOT_JSON, "invalid UTF-8 refused");

	dashboard_format_reason(DASHBOARD_REASON_NOTIFY | DASHBOARD_REASON_TIMER, "sales,stock", reason, sizeof(reason));
	is_str(reason, "notify:sales,stock", "coalesced notifications name their tables");
	dashboard_format_reason(DASHBOARD_REASON_NOTIFY | DASHBOARD_REASON_RECONNECT, "sales", reason, sizeof(reason));
	is_str(reason, "reconnect", "a reconnect outranks notifications");
	dashboard_format_reason(DASHBOARD_REASON_TIMER, "", reason, sizeof(reason));
	is_str(reason, "timer", "timer");
	dashboard_format_reason(DASHBOARD_REASON_NOTIFY, "", reason, sizeof(reason));
	is_str(reason, "notify", "a notification naming no attached table is just notify");

	ok(dashboard_name_ok("sales"), "a table name is fine");
	ok(dashboard_name_ok("caf\xc3\xa9"), "UTF-8 names are fine");
	ok(!dashboard_name_ok(""), "empty refused");
	ok(!dashboard_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3"),
	   "a UTF-8 sequence cut at 63 bytes refused");
	ok(!dashboard_name_ok("a\xe9"), "Latin-1 byte refused");
	ok(!dashboard_name_ok("a\x01b"), "control character refused");
	ok(!dashboard_name_ok("a\x7f"), "DEL refused");
	ok(!dashboard_name_ok("a,b"), "comma refused");
	ok(!dashboard_name_ok("a\"b"), "quote refused");
	ok(!dashboard_name_ok("a\\b"), "backslash refused");
	{
		char big[80];

		memset(big, 'a', 64);
		big[64] = '\0';
		ok(!dashboard_name_ok(big), "64 bytes refused");
		big[63] = '\0';
		ok(dashboard_name_ok(big), "63 bytes fine");
	}
	test_deltas();
	test_health();
	test_free_with_draw_queued();
	return done_testing();
}
