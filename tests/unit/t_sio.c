/* Socket.IO v5 packet decoding and validation, table-driven. */
#include "autoconfig.h"

#include "sio.h"
#include "tap.h"

static const struct {
	const char *in;
	int rc;
	int type;
	const char *nsp;
	long long id;        /* -1 = none */
	unsigned attachments;
	const char *event;   /* NULL = not checked */
} cases[] = {
	{ "0", 0, SIO_CONNECT, "/", -1, 0, NULL },
	{ "0{\"token\":\"123\"}", 0, SIO_CONNECT, "/", -1, 0, NULL },
	{ "0/admin,", 0, SIO_CONNECT, "/admin", -1, 0, NULL },
	{ "0/custom", 0, SIO_CONNECT, "/custom", -1, 0, NULL },
	{ "0/admin,{\"token\":\"abc\"}", 0, SIO_CONNECT, "/admin", -1, 0, NULL },
	{ "1", 0, SIO_DISCONNECT, "/", -1, 0, NULL },
	{ "1/admin,", 0, SIO_DISCONNECT, "/admin", -1, 0, NULL },
	{ "2[\"requestDashboardData\"]", 0, SIO_EVENT, "/", -1, 0, "requestDashboardData" },
	{ "212[\"requestDashboardData\"]", 0, SIO_EVENT, "/", 12, 0, "requestDashboardData" },
	{ "2/admin,13[\"bar\"]", 0, SIO_EVENT, "/admin", 13, 0, "bar" },
	{ "2[\"message\",1,\"2\",{\"3\":[true]}]", 0, SIO_EVENT, "/", -1, 0, "message" },
	{ "2[42]", 0, SIO_EVENT, "/", -1, 0, NULL },
	{ "312[]", 0, SIO_ACK, "/", 12, 0, NULL },
	{ "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", 0, SIO_BINARY_EVENT, "/", -1, 1, "baz" },
	{ "62-15[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 0, SIO_BINARY_ACK, "/", 15, 2, NULL },
	{ "4{\"message\":\"x\"}", 0, SIO_CONNECT_ERROR, "/", -1, 0, NULL },
	{ "2[\"caf\xc3\xa9\"]", 0, SIO_EVENT, "/", -1, 0, "caf\xc3\xa9" },
	/* Rejected, as socket.io-parser rejects them. */
	{ "", SIO_ERR_TYPE, 0, NULL, 0, 0, NULL },
	{ "abc", SIO_ERR_TYPE, 0, NULL, 0, 0, NULL },
	{ "7", SIO_ERR_TYPE, 0, NULL, 0, 0, NULL },
	{ "2{}", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2[]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2abc[\"message-with-ack\",1]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"connect\"]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2[\"disconnect\"]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2[\"newListener\"]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2[null]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2[{}]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "0\"str\"", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "0[1]", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "1{}", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "3{}", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "4", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "511-[\"x\"]", SIO_ERR_ATTACHMENTS, 0, NULL, 0, 0, NULL },
	{ "5x-[\"x\"]", SIO_ERR_ATTACHMENTS, 0, NULL, 0, 0, NULL },
	{ "51[\"x\"]", SIO_ERR_ATTACHMENTS, 0, NULL, 0, 0, NULL },
	{ "299999999999999999999[\"x\"]", SIO_ERR_ID, 0, NULL, 0, 0, NULL },
	{ "2[\"x\",]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\",NaN]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\",Infinity]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\",-Infinity]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\",1.]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\",01]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\tb\"]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"a\\x\"]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "0{'a':1}", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "0null ", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "1 null\n", SIO_ERR_PAYLOAD, 0, NULL, 0, 0, NULL },
	{ "2[\"a\",-1.5e+3,true,false,null,\"\\u00e9\\n\"]", 0, SIO_EVENT, "/", -1, 0, "a" },
	{ "2[\"x\"] trailing", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"x\"", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[\"\xff\"]", SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
	{ "2[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	  SIO_ERR_JSON, 0, NULL, 0, 0, NULL },
};

int main(void)
{
	struct json_tokener *tok = sio_tokener_new();

	ok(tok != NULL, "tokener created");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sio_packet p;
		int rc = sio_decode(cases[i].in, strlen(cases[i].in), &p, tok);

		if (cases[i].rc < 0) {
			is_int(rc, cases[i].rc, "rejects '%s'", cases[i].in);
			continue;
		}
		if (!ok(rc == 0, "decodes '%s'", cases[i].in)) {
			printf("#   error %d (%s)\n", rc, sio_error_message(rc));
			continue;
		}
		ok(p.type == (enum sio_type)cases[i].type &&
		   p.nsp_len == strlen(cases[i].nsp) && memcmp(p.nsp, cases[i].nsp, p.nsp_len) == 0 &&
		   (cases[i].id < 0 ? !p.has_id : p.has_id && (long long)p.id == cases[i].id) &&
		   p.attachments == cases[i].attachments &&
		   (!cases[i].event || (p.event && p.event_len == strlen(cases[i].event) &&
					memcmp(p.event, cases[i].event, p.event_len) == 0)),
		   "  fields of '%s'", cases[i].in);
		sio_packet_clear(&p);
	}
	ok(sio_is_reserved_event("removeListener", 14), "removeListener is reserved");
	ok(!sio_is_reserved_event("dashboardDataUpdate", 19), "our events are not reserved");
	ok(sio_is_main_nsp("/", 1) && !sio_is_main_nsp("/a", 2), "main namespace");
	{
		/* Half a surrogate pair must not leak into the next packet. The
		 * broken packet has to get past sio_json_strict to reach json-c
		 * (a bad escape would not): invalid UTF-8 right after a high
		 * surrogate stops json-c mid-string, with the surrogate pending. */
		struct sio_packet p;
		static const char bad[] = "2[\"\\ud83d\xff\"]";
		static const char next[] = "2[\"\\ude00\"]";

		ok(sio_decode(bad, sizeof(bad) - 1, &p, tok) < 0, "broken surrogate pair refused");
		if (ok(sio_decode(next, sizeof(next) - 1, &p, tok) == 0, "next packet decodes")) {
			ok(p.event_len != 4, "a lone low surrogate is not completed by the previous packet (%zu bytes)",
			   p.event_len);
			sio_packet_clear(&p);
		}
	}
	{
		/* Deep nesting is refused without deep recursion. */
		static char deep[1 << 20];
		struct sio_packet p;

		deep[0] = '2';
		memset(deep + 1, '[', sizeof(deep) - 1);
		is_int(sio_decode(deep, sizeof(deep), &p, tok), SIO_ERR_JSON, "1 MB of '[' refused");
	}
	json_tokener_free(tok);
	return done_testing();
}
