/* Socket.IO on the Engine.IO core, without sockets: CONNECT (main, custom,
 * unknown, too long), DISCONNECT, events, acks both ways (with blanks
 * before the array), binary attachments, the limits of what we send, and
 * the hub: join, broadcast, a client that is dropped or closes in the
 * middle of a broadcast. A fake transport and a fake clock. */
#include "autoconfig.h"

#include "hub.h"
#include "jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "log.h"
#include "snapshot.h"
#include "tap.h"
#include "core_harness.h"

static unsigned joins, leaves, events, acks_answered;
static char last_args[256], last_ack_args[256];
static unsigned last_natt;

static bool nsp_exists(void *ud, const char *nsp, size_t len)
{
	return (len == 1 && nsp[0] == '/') || (len == 7 && memcmp(nsp, "/custom", 7) == 0);
}

static void on_connect(void *ud, struct socketio_socket *sock, const char *auth, size_t auth_len)
{
	struct ws_part parts[] = { { "[\"auth\",", 8 }, { auth, auth_len }, { "]", 1 } };

	joins++;
	ok(socketio_emit(sock, parts, 3, NULL, 0) == 0, "auth emitted on connect");
}

static void on_leave(void *ud, struct socketio_socket *sock)
{
	leaves++;
}

static void on_client_ack(void *ud, struct socketio_socket *sock, const struct socketio_event *a)
{
	struct ws_part parts[] = {
		{ "[\"emit-with-ack\"", 16 }, { ",", a->args_len ? 1 : 0 }, { a->args, a->args_len },
		{ "]", 1 },
	};

	acks_answered++;
	snprintf(last_ack_args, sizeof(last_ack_args), "%.*s", (int)a->args_len, a->args);
	if (socketio_emit(sock, parts, 4, a->attachments, a->n_attachments) < 0)
		ok(0, "emit");
}

static void on_event(void *ud, struct socketio_socket *sock, const struct socketio_event *ev)
{
	struct ws_part parts[] = {
		{ "[\"message-back\"", 15 }, { ",", ev->args_len ? 1 : 0 }, { ev->args, ev->args_len },
		{ "]", 1 },
	};

	events++;
	last_natt = ev->n_attachments;
	snprintf(last_args, sizeof(last_args), "%.*s", (int)ev->args_len, ev->args);
	if (ev->name && ev->name_len == 7 && memcmp(ev->name, "message", 7) == 0) {
		if (socketio_emit(sock, parts, 4, ev->attachments, ev->n_attachments) < 0)
			ok(0, "emit");
	} else if (ev->name && ev->name_len == 13 && memcmp(ev->name, "emit-with-ack", 13) == 0) {
		parts[0] = (struct ws_part){ "[\"emit-with-ack\"", 16 };
		if (socketio_emit_with_ack(sock, parts, 4, NULL, 0, on_client_ack, NULL) < 0)
			ok(0, "emit with ack");
	} else if (ev->has_id) {
		struct ws_part a[] = { { "[", 1 }, { ev->args, ev->args_len }, { "]", 1 } };

		if (socketio_ack(sock, ev->id, a, 3, ev->attachments, ev->n_attachments) < 0)
			ok(0, "ack");
	}
}

static const struct socketio_app app = {
	.nsp_exists = nsp_exists,
	.on_connect = on_connect,
	.on_leave = on_leave,
	.on_event = on_event,
};

static void start_with(const struct socketio_app *a, void *ud, const char **extra, int n)
{
	const char *hb[8] = { "--ping-interval", "60000", "--ping-timeout", "60000" };
	int k = 4;

	for (int i = 0; i < n; i++)
		hb[k++] = extra[i];
	h_config(hb, k);
	h_start(a, ud, NULL, NULL);
}

static void stop(void)
{
	h_stop();
	config_free(&h_cfg);
}

/* A WebSocket Socket.IO client joined to the main namespace. */
static struct conn *client(struct fake **fp)
{
	struct conn *c = h_ws(fp, "/socket.io/?EIO=4&transport=websocket");

	h_ws_text_next(*fp); /* open */
	h_ws_text(c, *fp, "40");
	h_ws_text_next(*fp); /* 40{sid} */
	h_ws_text_next(*fp); /* auth */
	return c;
}

static void test_connect(void)
{
	struct fake *w;
	struct conn *c;
	const char *m;
	unsigned before;
	char buf[256];

	start_with(&app, NULL, NULL, 0);
	c = h_ws(&w, "/socket.io/?EIO=4&transport=websocket");
	ok(strncmp(h_ws_text_next(w), "0{", 2) == 0, "open packet");
	before = w->writes;
	h_keep_paced = true;
	h_ws_text(c, w, "40");
	m = h_ws_text_next(w);
	ok(strncmp(m, "40{\"sid\":\"", 10) == 0 && strlen(m) == 10 + UTIL_ID_LEN + 2,
	   "40 -> 40{\"sid\":...} with only the sid");
	is_int(w->writes - before, 1, "the CONNECT reply is written at once");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "the application's first emit waits");
	ok(c->paced && ev_is_active(&c->timer), "for the pause's timer");
	h_keep_paced = false;
	h_settle();
	is_str(h_ws_text_next(w), "42[\"auth\",{}]", "then the auth emit follows");
	is_int(w->writes - before, 2, "in a write of its own");

	/* A session closed during the pause: what waited, then the close
	 * frame, at once (shutdown sends 1001 to everyone within a second). */
	{
		struct fake *w2;
		struct conn *c2 = h_ws(&w2, "/socket.io/?EIO=4&transport=websocket");

		h_ws_text_next(w2);
		h_keep_paced = true;
		h_ws_text(c2, w2, "40");
		h_ws_text_next(w2);
		ok(c2->paced, "paced after the CONNECT reply");
		h_ws_text(c2, w2, "1");
		is_str(h_ws_text_next(w2), "42[\"auth\",{}]", "closed in the pause: the waiting emit goes");
		is_int(h_ws_next(w2, buf, sizeof(buf), NULL), 8, "and the close frame, without waiting");
		h_keep_paced = false;
		leaves = 0;
	}

	h_ws_text(c, w, "40/custom,{\"token\":\"abc\"}");
	ok(strncmp(h_ws_text_next(w), "40/custom,{\"sid\":", 17) == 0, "custom namespace joined");
	is_str(h_ws_text_next(w), "42/custom,[\"auth\",{\"token\":\"abc\"}]", "auth with its payload");
	h_ws_text(c, w, "40/random");
	is_str(h_ws_text_next(w), "44/random,{\"message\":\"Invalid namespace\"}", "unknown namespace");
	h_ws_text(c, w, "41/custom,");
	is_int(leaves, 1, "DISCONNECT from /custom: on_leave");
	h_ws_text(c, w, "42[\"message\",\"to main\"]");
	is_str(h_ws_text_next(w), "42[\"message-back\",\"to main\"]", "main namespace still works");
	is_int(h_srv.sio_eng.nsessions, 1, "the session stays");
	h_ws_text(c, w, "41");
	is_int(leaves, 2, "DISCONNECT from /: on_leave");
	is_int(h_srv.sio_eng.nsessions, 1, "the Engine.IO session stays open (reference)");
	h_ws_text(c, w, "42[\"message\",1]");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "an event for a namespace not joined closes");

	/* Defect 7: a namespace too long is an error, not "/". */
	c = h_ws(&w, "/socket.io/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	{
		char pkt[400] = "40/";

		memset(pkt + 3, 'a', 200);
		strcpy(pkt + 203, ",");
		h_ws_text(c, w, pkt);
	}
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "a namespace over 128 bytes closes the session");
	ok(strstr(buf + 2, "namespace") != NULL, "with a reason that says so");

	/* On polling too. */
	{
		char sid[UTIL_ID_LEN + 1], t[256];
		struct fake *f;
		struct h_resp r;

		ok(h_poll_open("/socket.io", sid) == 0, "polling Socket.IO session");
		h_target(t, sizeof(t), "/socket.io", "polling", sid);
		h_request(&f, "POST", t, NULL, "40");
		h_request(&f, "GET", t, NULL, NULL);
		r = h_response(f);
		ok(strncmp(r.body, "40{\"sid\":", 9) == 0 && strstr(r.body, "\x1e" "42[\"auth\",{}]"),
		   "CONNECT reply and auth in one polling response");
	}
	stop();
}

static void test_events_and_acks(void)
{
	struct fake *w;
	struct conn *c;
	char buf[256];
	size_t len;

	start_with(&app, NULL, NULL, 0);
	c = client(&w);
	h_ws_text(c, w, "42[\"message\",1,\"2\",{\"3\":[true]}]");
	is_str(last_args, "1,\"2\",{\"3\":[true]}", "event arguments after the name");
	is_str(h_ws_text_next(w), "42[\"message-back\",1,\"2\",{\"3\":[true]}]", "message echoed back");
	h_ws_text(c, w, "42 [\"message\" , 5 ] ");
	is_str(h_ws_text_next(w), "42[\"message-back\", 5 ]", "blanks in the array are fine");

	/* Acks the client asks for. */
	h_ws_text(c, w, "427[\"message-with-ack\",1,\"2\"]");
	is_str(h_ws_text_next(w), "437[1,\"2\"]", "ack answered with the same id");

	/* Acks we ask for; defect 1: "430 [2]" (blank before the array). */
	h_ws_text(c, w, "42[\"emit-with-ack\",1]");
	is_str(h_ws_text_next(w), "420[\"emit-with-ack\",1]", "the server asks for ack 0");
	h_ws_text(c, w, "430 [2]");
	is_str(last_ack_args, "2", "the answer's arguments, with a blank before the array");
	is_str(h_ws_text_next(w), "42[\"emit-with-ack\",2]", "re-emitted as valid JSON");
	h_ws_text(c, w, "42[\"emit-with-ack\",3]");
	is_str(h_ws_text_next(w), "421[\"emit-with-ack\",3]", "ack 1 asked");
	h_ws_text(c, w, "431[]");
	is_str(h_ws_text_next(w), "42[\"emit-with-ack\"]", "an empty answer");
	h_ws_text(c, w, "439[5]");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "an unknown ack id is ignored");

	/* Binary attachments. */
	h_ws_text(c, w, "451-[\"message\",{\"_placeholder\":true,\"num\":0}]");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "waiting for the attachment");
	h_ws_send(c, w, 2, "\x01\x02\x03", 3);
	is_int(last_natt, 1, "the event came with its attachment");
	is_str(h_ws_text_next(w), "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]",
	       "echoed as a binary event");
	is_int(h_ws_next(w, buf, sizeof(buf), &len), 2, "followed by the binary frame");
	ok(len == 3 && memcmp(buf, "\x01\x02\x03", 3) == 0, "with the same bytes");
	stop();
}

static void test_send_limits(void)
{
	struct fake *w;
	struct conn *c;
	struct session *s;
	struct socketio_client *cl;
	struct socketio_socket sock;
	struct ws_part parts[SOCKETIO_MAX_PARTS + 1];
	char buf[4096];

	start_with(&app, NULL, NULL, 0);
	c = client(&w);
	(void)c;
	s = LIST_ENTRY(h_srv.sio_eng.table[0].next, struct session, table_link);
	for (size_t b = 0; b < ENGINE_BUCKETS; b++) {
		if (!list_empty(&h_srv.sio_eng.table[b])) {
			s = LIST_ENTRY(h_srv.sio_eng.table[b].next, struct session, table_link);
			break;
		}
	}
	cl = s->app;
	sock = (struct socketio_socket){ .session = s, .client = cl, .nsp = (char *)"/", .nsp_len = 1 };
	parts[0] = (struct ws_part){ "[\"x\"", 4 };
	for (size_t i = 1; i < SOCKETIO_MAX_PARTS + 1; i++)
		parts[i] = (struct ws_part){ ",1", 2 };
	parts[SOCKETIO_MAX_PARTS - 1] = (struct ws_part){ "]", 1 };
	is_int(socketio_emit(&sock, parts, SOCKETIO_MAX_PARTS, NULL, 0), 0, "15 parts are sent");
	is_str(h_ws_text_next(w), "42[\"x\",1,1,1,1,1,1,1,1,1,1,1,1,1]", "all of them");
	parts[SOCKETIO_MAX_PARTS - 1] = (struct ws_part){ ",1", 2 };
	parts[SOCKETIO_MAX_PARTS] = (struct ws_part){ "]", 1 };
	is_int(socketio_emit(&sock, parts, SOCKETIO_MAX_PARTS + 1, NULL, 0), -1,
	       "16 parts: an error, not a packet cut short");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "nothing sent");
	{
		char longns[300];
		struct socketio_socket bad = sock;

		memset(longns, 'a', sizeof(longns));
		longns[0] = '/';
		bad.nsp = longns;
		bad.nsp_len = sizeof(longns);
		is_int(socketio_emit(&bad, parts, 2, NULL, 0), -1,
		       "a namespace too long to write: an error, not \"/\"");
		is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "nothing sent");
	}
	stop();
}

/* ---- the hub ------------------------------------------------------------ */

static struct snapshot *snap(int64_t version)
{
	struct snapshot *s = NULL;
	char doc[64];

	snprintf(doc, sizeof(doc), "{\"v\":%lld}", (long long)version);
	if (snapshot_new(doc, strlen(doc), version, 0, "test", &s) < 0)
		return NULL;
	return s;
}

static void test_hub(void)
{
	const char *small[] = { "--max-pending-bytes", "4096" };
	struct hub hub;
	struct fake *w[4];
	struct conn *c[4];
	struct snapshot *s1, *s2, *big;
	char buf[8192];
	const char *m;

	if (hub_init(&hub) < 0)
		abort();
	start_with(&hub_app, &hub, small, 2);
	s1 = snap(1);
	hub_publish(&hub, s1);
	for (int i = 0; i < 4; i++) {
		c[i] = h_ws(&w[i], "/socket.io/?EIO=4&transport=websocket");
		h_ws_text_next(w[i]);
		h_ws_text(c[i], w[i], "40");
		h_ws_text_next(w[i]);
	}
	m = h_ws_text_next(w[0]);
	ok(strncmp(m, "42[\"dashboardDataUpdate\",{\"version\":1,", 38) == 0, "a member gets the snapshot on joining");
	for (int i = 1; i < 4; i++)
		h_ws_text_next(w[i]);
	is_int(hub.count, 4, "four members");

	/* requestDashboardData with an ack: the document is referenced in
	 * the shared frame, not copied. */
	ok(hub.main_feed->snap_doc_off > 0, "the document is found inside the snapshot's frame");
	{
		int refs = s1->frame->refs;
		char want[256];

		w[0]->blocked = true;
		h_ws_text(c[0], w[0], "423[\"requestDashboardData\"]");
		is_int(s1->frame->refs, refs + 1, "the ack's queue entry references the shared frame");
		w[0]->blocked = false;
		conn_flush(c[0]);
		is_int(s1->frame->refs, refs, "and lets it go once written");
		snprintf(want, sizeof(want), "433[%s]", s1->doc);
		is_str(h_ws_text_next(w[0]), want, "requestDashboardData answered through the ack");
	}

	/* The request rate: a burst of HUB_REQUEST_BURST, then
	 * HUB_REQUEST_RATE a second; beyond it requests are ignored. */
	{
		unsigned answered = 0;
		char req[64];

		hub.now = fake_now;
		/* A fresh member with a full bucket. */
		h_ws_text(c[3], w[3], "41");
		h_ws_text(c[3], w[3], "40");
		while (h_ws_next(w[3], buf, sizeof(buf), NULL) >= 0)
			;
		for (int i = 0; i < 150; i++) {
			snprintf(req, sizeof(req), "42%d[\"requestDashboardData\"]", 100 + i);
			h_ws_text(c[3], w[3], req);
		}
		while (h_ws_next(w[3], buf, sizeof(buf), NULL) >= 0)
			answered += strncmp(buf, "43", 2) == 0;
		is_int(answered, (long long)HUB_REQUEST_BURST, "150 requests at once: a burst is answered");
		is_int(hub.limited, 150 - (long long)HUB_REQUEST_BURST, "the rest is ignored and counted");
		h_advance(1.0);
		answered = 0;
		for (int i = 0; i < 50; i++) {
			snprintf(req, sizeof(req), "42%d[\"requestDashboardData\"]", 300 + i);
			h_ws_text(c[3], w[3], req);
		}
		while (h_ws_next(w[3], buf, sizeof(buf), NULL) >= 0)
			answered += strncmp(buf, "43", 2) == 0;
		is_int(answered, (long long)HUB_REQUEST_RATE, "a second later: the rate's worth");
		hub.now = deadline_monotonic;
	}

	/* Acks asked for during the connect pause wait in the queue (three
	 * entries each): 30 of them, with the snapshot, are no overflow
	 * (more than the 64 entries a queue used to be allowed). */
	{
		struct fake *pw;
		struct conn *pc = h_ws(&pw, "/socket.io/?EIO=4&transport=websocket");
		unsigned answered = 0;
		char req[64];

		h_ws_text_next(pw);
		h_keep_paced = true;
		h_ws_text(pc, pw, "40");
		for (int i = 0; i < 30; i++) {
			snprintf(req, sizeof(req), "42%d[\"requestDashboardData\"]", i);
			h_ws_text(pc, pw, req);
		}
		ok(!pw->closed && pc->outq_len > 64, "30 acks queued in the pause: %u entries, no overflow",
		   pc->outq_len);
		h_keep_paced = false;
		h_settle();
		while (h_ws_next(pw, buf, sizeof(buf), NULL) >= 0)
			answered += strncmp(buf, "43", 2) == 0;
		is_int(answered, 30, "all answered once the pause ends");
		h_ws_text(pc, pw, "1");
	}

	/* The same over polling: the outbox references the shared frame. */
	{
		char sid[UTIL_ID_LEN + 1], t[256], want[256];
		struct fake *f;
		struct h_resp r;
		int refs;

		ok(h_poll_open("/socket.io", sid) == 0, "a polling member");
		h_target(t, sizeof(t), "/socket.io", "polling", sid);
		h_request(&f, "POST", t, NULL, "40");
		h_request(&f, "GET", t, NULL, NULL);
		ok(strstr(h_response(f).body, "dashboardDataUpdate") != NULL, "joined, got the snapshot");
		refs = s1->frame->refs;
		h_request(&f, "POST", t, NULL, "425[\"requestDashboardData\"]\x1e" "426[\"requestDashboardData\"]");
		is_int(s1->frame->refs, refs + 2, "two unpolled acks: two references, no copies");
		h_request(&f, "GET", t, NULL, NULL);
		r = h_response(f);
		snprintf(want, sizeof(want), "435[%s]\x1e" "436[%s]", s1->doc, s1->doc);
		is_str(r.body, want, "both answered in one response");
		is_int(s1->frame->refs, refs, "the references are let go once sent");

		/* An ack still queued when the session upgrades follows over the
		 * WebSocket, still a reference. */
		h_request(&f, "POST", t, NULL, "427[\"requestDashboardData\"]");
		{
			struct fake *pw;
			struct conn *pc;
			char wt[256];

			h_target(wt, sizeof(wt), "/socket.io", "websocket", sid);
			pc = h_ws(&pw, wt);
			h_ws_text(pc, pw, "2probe");
			is_str(h_ws_text_next(pw), "3probe", "probe answered");
			h_ws_text(pc, pw, "5");
			snprintf(want, sizeof(want), "437[%s]", s1->doc);
			is_str(h_ws_text_next(pw), want, "the queued ack follows over the WebSocket");
			h_ws_text(pc, pw, "1");
		}
		h_settle();
	}

	/* Member 1 stops reading; member 2's peer is gone (writes fail). */
	w[1]->blocked = true;
	{
		char doc[3000];
		struct snapshot *s = NULL;

		memset(doc, ' ', sizeof(doc));
		memcpy(doc, "{\"pad\":\"", 8);
		memset(doc + 8, 'x', sizeof(doc) - 11);
		memcpy(doc + sizeof(doc) - 3, "\"}", 2);
		doc[sizeof(doc) - 1] = '\0';
		ok(snapshot_new(doc, strlen(doc), 9, 0, "big", &s) == 0, "a 3 KB snapshot");
		big = s;
	}
	hub_publish(&hub, big);
	s2 = snap(2);
	hub_publish(&hub, s2); /* replaces the unsent big one in member 1's queue */
	ok(!w[1]->closed, "latest wins: a slow member holds one snapshot, not two");
	hub_publish(&hub, big);
	hub_publish(&hub, s2);
	w[2]->eof = true;
	conn_close(c[2], "test: peer gone");
	/* A broadcast where one member overflows and one is already closed:
	 * member 1 holds an unsent error frame (never replaced), so the big
	 * snapshot puts it over --max-pending-bytes in the middle of the
	 * broadcast. */
	{
		char err[2600];
		struct snapshot *s3 = snap(3);

		memset(err, 'e', sizeof(err));
		memcpy(err, "{\"m\":\"", 6);
		memcpy(err + sizeof(err) - 3, "\"}", 3);
		ok(hub_set_error(&hub, err) == 0, "an error frame queued for everyone");
		ok(!w[1]->closed && c[1]->out_bytes > 2000, "member 1 holds it unsent");
		hub_publish(&hub, big);
		ok(w[1]->closed, "member 1 is dropped in the middle of the broadcast");
		ok(hub_set_error(&hub, NULL) == 0, "error cleared");
		hub_publish(&hub, s3);
		snapshot_unref(s3);
	}
	is_int(hub.count, 4, "nobody leaves the hub during the broadcast");
	h_settle();
	is_int(hub.count, 2, "the dropped and the closed member leave from the reaper");
	{
		int got = 0;
		int op;

		while ((op = h_ws_next(w[3], buf, sizeof(buf), NULL)) >= 0)
			if (strstr(buf, "\"v\":3"))
				got = 1;
		ok(got, "the other members got every snapshot");
	}
	snapshot_unref(s1);
	snapshot_unref(s2);
	snapshot_unref(big);
	stop();
	is_int(hub.count, 0, "every member left when the server stopped");
	hub_free(&hub);
}


/* ---- the hub with tokens: audiences, refusals, expiry ---------------------- */

static char *ut_b64url(const unsigned char *d, size_t n)
{
	static const char al[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4), *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = al[d[i] >> 2];
		*o++ = al[(d[i] & 3) << 4 | d[i + 1] >> 4];
		*o++ = al[(d[i + 1] & 15) << 2 | d[i + 2] >> 6];
		*o++ = al[d[i + 2] & 63];
	}
	if (n - i == 1) {
		*o++ = al[d[i] >> 2];
		*o++ = al[(d[i] & 3) << 4];
	} else if (n - i == 2) {
		*o++ = al[d[i] >> 2];
		*o++ = al[(d[i] & 3) << 4 | d[i + 1] >> 4];
		*o++ = al[(d[i + 1] & 15) << 2];
	}
	*o = '\0';
	return out;
}

static const char ut_secret[] = "0123456789abcdef0123456789abcdef-unit";

/* "40<nsp,>{"token":"<HS256 of payload>"}" into out. */
static void ut_connect_packet(char *out, size_t outlen, const char *nsp, const char *payload)
{
	const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char *h = ut_b64url((const unsigned char *)hdr, strlen(hdr));
	char *p = ut_b64url((const unsigned char *)payload, strlen(payload));
	char input[1024];
	unsigned char sig[64];
	unsigned int sl = 0;
	char *sg;

	snprintf(input, sizeof(input), "%s.%s", h, p);
	HMAC(EVP_sha256(), ut_secret, (int)strlen(ut_secret), (unsigned char *)input, strlen(input),
	     sig, &sl);
	sg = ut_b64url(sig, sl);
	snprintf(out, outlen, "40%s%s{\"token\":\"%s.%s\"}", nsp, *nsp ? "," : "", input, sg);
	free(h);
	free(p);
	free(sg);
}

static int64_t ut_unix = 1000000;
static int64_t ut_unix_now(void)
{
	return ut_unix;
}

static void test_hub_auth(void)
{
	struct hub hub;
	struct jwt_key *key = NULL;
	struct fake *w[6];
	struct conn *c[6];
	struct hub_feed *viewer = NULL, *f;
	struct hub_dashboard *db, *ops;
	struct snapshot *s1;
	char pkt[1024], err[128];
	const char *m;

	if (hub_init(&hub) < 0 || jwt_key_load(ut_secret, strlen(ut_secret), &key, err, sizeof(err)) < 0)
		abort();
	hub_set_auth(&hub, key, NULL, NULL, 2, 1.0);
	hub.unix_now = ut_unix_now;
	ok(hub.main_feed == NULL && hub.nfeeds == 0, "with tokens, no audience before a client");
	ops = hub_add_dashboard(&hub, "ops");
	ok(ops && hub_dashboard_set(ops, "SELECT 1", NULL, 0, NULL, 0) == 0, "a named dashboard");
	start_with(&hub_app, &hub, NULL, 0);

	c[0] = h_ws(&w[0], "/socket.io/?EIO=4&transport=websocket");
	h_ws_text_next(w[0]);
	h_ws_text(c[0], w[0], "40");
	m = h_ws_text_next(w[0]);
	is_str(m, "44{\"message\":\"a token is required\",\"data\":{\"code\":\"auth_required\"}}",
	       "no token: CONNECT_ERROR auth_required");
	h_ws_text(c[0], w[0], "40{\"token\":\"garbage\"}");
	m = h_ws_text_next(w[0]);
	ok(strstr(m, "\"code\":\"token_invalid\"") && strncmp(m, "44{", 3) == 0, "garbage: token_invalid (%s)", m);
	ut_connect_packet(pkt, sizeof(pkt), "", "{\"role\":\"viewer\",\"exp\":999000}");
	h_ws_text(c[0], w[0], pkt);
	m = h_ws_text_next(w[0]);
	ok(strstr(m, "\"code\":\"token_expired\"") != NULL, "expired: token_expired");
	ut_connect_packet(pkt, sizeof(pkt), "/nope", "{\"role\":\"viewer\"}");
	h_ws_text(c[0], w[0], pkt);
	m = h_ws_text_next(w[0]);
	ok(strncmp(m, "44/nope,", 8) == 0, "an unknown dashboard's namespace is refused (%s)", m);
	is_int(hub.count, 0, "nobody admitted");

	/* Two viewers with different sub share one audience; a manager has
	 * its own; a third role is over --max-audiences 2. */
	for (int i = 0; i < 4; i++) {
		static const char *const pl[] = {
			"{\"role\":\"viewer\",\"sub\":\"a\",\"exp\":1000010}",
			"{\"role\":\"viewer\",\"sub\":\"b\"}",
			"{\"role\":\"manager\"}",
			"{\"role\":\"other\"}",
		};

		if (i > 0) {
			c[i] = h_ws(&w[i], "/socket.io/?EIO=4&transport=websocket");
			h_ws_text_next(w[i]);
		}
		ut_connect_packet(pkt, sizeof(pkt), "", pl[i]);
		h_ws_text(c[i], w[i], pkt);
		m = h_ws_text_next(w[i]);
		if (i < 3)
			ok(strncmp(m, "40{\"sid\":", 9) == 0, "token %d admitted", i);
		else
			ok(strstr(m, "\"code\":\"audience_limit\"") != NULL, "a third audience: audience_limit (%s)", m);
	}
	is_int(hub.nfeeds, 2, "two audiences for three members");
	is_int(hub.count, 3, "three members");
	HUB_FOR_EACH_DASHBOARD(&hub, db) {
		HUB_FOR_EACH_FEED(db, f) {
			if (f->role && strcmp(f->role, "viewer") == 0)
				viewer = f;
		}
	}
	ok(viewer && strcmp(viewer->key, "{\"role\":\"viewer\"}") == 0, "the audience key is the projection");
	if (viewer) {
		s1 = snap(7);
		hub_feed_publish(&hub, viewer, s1);
		snapshot_unref(s1);
		for (int i = 0; i < 2; i++) {
			m = h_ws_text_next(w[i]);
			ok(strncmp(m, "42[\"dashboardDataUpdate\",{\"version\":7,", 38) == 0, "viewer %d gets its document", i);
		}
		m = h_ws_text_next(w[2]);
		is_str(m, "", "the manager gets nothing of the viewer's");
	}

	/* The first viewer's token expires (exp + 30 s leeway). */
	ut_unix = 1000041;
	hub_sweep(&hub);
	m = h_ws_text_next(w[0]);
	ok(strstr(m, "\"code\":\"token_expired\"") && strncmp(m, "42[\"dashboardDataError\"", 23) == 0,
	   "expired mid-session: dashboardDataError token_expired");
	m = h_ws_text_next(w[0]);
	is_str(m, "41", "then a DISCONNECT");
	is_int(hub.count, 2, "it left the hub");
	m = h_ws_text_next(w[1]);
	is_str(m, "", "the other viewer stays");

	/* A named dashboard: frames carry the namespace. */
	hub.max_audiences = 3;
	c[4] = h_ws(&w[4], "/socket.io/?EIO=4&transport=websocket");
	h_ws_text_next(w[4]);
	ut_connect_packet(pkt, sizeof(pkt), "/ops", "{\"role\":\"manager\"}");
	h_ws_text(c[4], w[4], pkt);
	m = h_ws_text_next(w[4]);
	ok(strncmp(m, "40/ops,{\"sid\":", 14) == 0, "joined /ops (%s)", m);
	f = ops && !list_empty(&ops->feeds) ? LIST_ENTRY(ops->feeds.next, struct hub_feed, link) : NULL;
	ok(f != NULL, "/ops has its audience");
	if (f) {
		struct snapshot *s = NULL;

		ok(snapshot_new_nsp("{\"a\":1}", 7, 9, 0, "test", ops->nsp, &s) == 0, "a namespaced snapshot");
		hub_feed_publish(&hub, f, s);
		ok(f->snap_doc_off > 0, "its document is found inside the namespaced frame");
		snapshot_unref(s);
		m = h_ws_text_next(w[4]);
		ok(strncmp(m, "42/ops,[\"dashboardDataUpdate\",{\"version\":9,", 43) == 0, "the update in /ops (%s)", m);
		hub_remove_dashboard(&hub, ops);
		m = h_ws_text_next(w[4]);
		ok(strstr(m, "dashboard_unregistered") && strncmp(m, "42/ops,", 7) == 0, "unregistered: told");
		m = h_ws_text_next(w[4]);
		is_str(m, "41/ops,", "and disconnected from /ops");
	}
	hub_sweep(&hub);
	stop();
	hub_free(&hub);
	jwt_key_free(key);
}

int main(void)
{
	test_connect();
	test_events_and_acks();
	test_send_limits();
	test_hub();
	test_hub_auth();
	return done_testing();
}
