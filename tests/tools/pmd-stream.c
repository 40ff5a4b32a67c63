/*
 * pmd-stream: the frames one client would get from a shared-context server,
 * for tests/integration/pmd-shared.test.mjs, which plays them to real
 * clients (ws, the transport of socket.io-client, and headless Chromium).
 *
 *   pmd-stream '<Sec-WebSocket-Extensions offer>' <messages> <seed>
 *
 * Negotiates the offer with pmdneg_negotiate_mode(PMDNEG_MODE_SHARED), then
 * writes to stdout:
 *   "RESP <response>\n" (or "DECLINED\n": then every frame is plain),
 *   then per message: a 4-byte big-endian length and the complete server
 *   frame, a 4-byte length and the message text the client must read.
 *
 * The stream mixes what the daemon will send: a 29 KB dashboard after one
 * sale (a few digits changed) or after many, some versions skipped
 * (latest-wins), Engine.IO pings sent plain, acks 43<n>[<doc>] compressed
 * and recorded as a suffix of the snapshot, and now and then the server
 * losing its held payloads (the next frame is then self-contained). Every
 * choice is made by pmd_window_choose and recorded by pmd_window_sent, as
 * the wiring will, so the clients check the model as well as the frames.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmd.h"
#include "pmdneg.h"
#include "ws.h"

#include "../unit/dashboard_doc.h"

static void put(const void *p, size_t len)
{
	uint32_t n = htonl((uint32_t)len);

	if (fwrite(&n, 4, 1, stdout) != 1 || (len && fwrite(p, 1, len, stdout) != len))
		exit(1);
}

struct held {
	uint64_t id;
	uint8_t *p;
	size_t len;
};

int main(int argc, char **argv)
{
	struct pmdneg_params params;
	char resp[PMDNEG_RESPONSE_MAX];
	struct pmd_window w;
	struct held cur = { 0 }, prev = { 0 };
	uint64_t next_id = 0;
	size_t base_len;
	char *base;
	long n;
	bool deflate;

	if (argc != 4)
		return 2;
	n = strtol(argv[2], NULL, 10);
	rng = strtoul(argv[3], NULL, 10);
	deflate = pmdneg_negotiate_mode(PMDNEG_MODE_SHARED, argv[1], strlen(argv[1]), &params, resp,
				     sizeof(resp)) == PMDNEG_ACCEPTED;
	if (deflate)
		printf("RESP %s\n", resp);
	else
		printf("DECLINED\n");
	pmd_window_init(&w, deflate ? &params : NULL);
	base = dashboard_doc(29 * 1024, &base_len);
	for (long i = 0; i < n;) {
		unsigned ev = rnd(100);

		if (ev < 12 && cur.p) {
			/* An Engine.IO ping, plain: outside the window. */
			struct buf *f = ws_frame(WS_OP_TEXT, "2", 1);

			put(f->data, f->len);
			put("2", 1);
			buf_unref(f);
			pmd_window_sent(&w, PMD_NO_ID, false);
			i++;
			continue;
		}
		if (ev < 18) {
			/* The server lets go of what it held. */
			free(prev.p);
			prev = (struct held){ 0 };
			if (rnd(2)) {
				free(cur.p);
				cur = (struct held){ 0 };
			}
		}
		if (ev < 26 && cur.p) {
			/* An ack carrying the current document, compressed against
			 * the client's dictionary, recorded as a suffix. */
			const char *doc = (const char *)cur.p + strlen("42[\"dashboardDataUpdate\",");
			size_t doc_len = cur.len - strlen("42[\"dashboardDataUpdate\",");
			char head[16];
			int hl = snprintf(head, sizeof(head), "43%u[", rnd(100));
			struct ws_part parts[] = { { head, (size_t)hl }, { doc, doc_len } };
			struct pmd_group_key k;
			struct held *d = w.last_id == cur.id ? &cur : w.last_id == prev.id ? &prev : NULL;
			enum pmd_send how = pmd_window_choose(&w, d && d->p, &k);
			uint8_t *text = malloc((size_t)hl + doc_len);
			struct buf *f;

			memcpy(text, head, (size_t)hl);
			memcpy(text + hl, doc, doc_len);
			if (how == PMD_SEND_PLAIN) {
				f = ws_frame_build(WS_OP_TEXT, parts, 2);
			} else {
				size_t dl = how == PMD_SEND_DICT ? (k.suffix && k.suffix < d->len ? k.suffix : d->len) : 0;

				f = pmd_frame_with_dict(WS_OP_TEXT, parts, 2,
							dl ? d->p + d->len - dl : NULL, dl, k.window_bits,
							PMD_LEVEL_DICT);
			}
			put(f->data, f->len);
			put(text, (size_t)hl + doc_len);
			if (how == PMD_SEND_PLAIN)
				pmd_window_sent(&w, PMD_NO_ID, false);
			else
				pmd_window_sent_suffix(&w, cur.id, doc_len); /* ends with <doc>] */
			buf_unref(f);
			free(text);
			i++;
			continue;
		}
		/* A new version: one sale, or many changes. */
		for (unsigned k = 0, m = rnd(4) ? 1 + rnd(6) : 300; k < m; k++) {
			size_t at = rnd((unsigned)base_len);

			if (base[at] >= '0' && base[at] <= '9')
				base[at] = (char)('0' + rnd(10));
		}
		free(prev.p);
		prev = cur;
		cur.id = ++next_id;
		cur.len = strlen("42[\"dashboardDataUpdate\",") + base_len + 1;
		cur.p = malloc(cur.len);
		memcpy(cur.p, "42[\"dashboardDataUpdate\",", 25);
		memcpy(cur.p + 25, base, base_len);
		cur.p[cur.len - 1] = ']';
		if (rnd(100) < 20)
			continue; /* latest-wins: this client never gets it */
		{
			struct ws_part part = { cur.p, cur.len };
			struct pmd_group_key k;
			struct held *d = w.last_id == prev.id ? &prev : NULL;
			enum pmd_send how = pmd_window_choose(&w, d && d->p, &k);
			struct buf *f;

			if (how == PMD_SEND_PLAIN) {
				f = ws_frame_build(WS_OP_TEXT, &part, 1);
			} else {
				size_t dl = how == PMD_SEND_DICT ? (k.suffix && k.suffix < d->len ? k.suffix : d->len) : 0;

				f = pmd_frame_with_dict(WS_OP_TEXT, &part, 1,
							dl ? d->p + d->len - dl : NULL, dl, k.window_bits,
							PMD_LEVEL_DICT);
			}
			put(f->data, f->len);
			put(cur.p, cur.len);
			pmd_window_sent(&w, cur.id, how != PMD_SEND_PLAIN);
			fprintf(stderr, "%s %zu\n", how == PMD_SEND_DICT ? "dict" :
				how == PMD_SEND_SELF ? "self" : "plain", f->len);
			buf_unref(f);
			i++;
		}
	}
	free(cur.p);
	free(prev.p);
	free(base);
	pmd_cleanup();
	return fflush(stdout) == 0 ? 0 : 1;
}
