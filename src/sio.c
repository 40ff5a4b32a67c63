#include "autoconfig.h"

#include "sio.h"
#include "util.h"

#include <string.h>

#define SIO_JSON_DEPTH 32

static const char *const reserved_events[] = {
	"connect", "connect_error", "disconnect", "disconnecting",
	"newListener", "removeListener",
};

bool sio_is_reserved_event(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(reserved_events) / sizeof(reserved_events[0]); i++) {
		if (strlen(reserved_events[i]) == len && memcmp(reserved_events[i], name, len) == 0)
			return true;
	}
	return false;
}

bool sio_is_main_nsp(const char *nsp, size_t len)
{
	return len == 1 && nsp[0] == '/';
}

struct json_tokener *sio_tokener_new(void)
{
	struct json_tokener *tok = json_tokener_new_ex(SIO_JSON_DEPTH);

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

static int parse_json(const char *s, size_t len, struct json_tokener *tok, json_object **out)
{
	json_object *obj;

	if (len > INT32_MAX - 1)
		return SIO_ERR_JSON;
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, s, (int)len);
	if (json_tokener_get_error(tok) == json_tokener_continue) {
		/* A bare number needs a terminator to be complete. */
		obj = json_tokener_parse_ex(tok, "", 1);
	}
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) < len) {
		json_object_put(obj);
		return SIO_ERR_JSON;
	}
	*out = obj;
	return 0;
}

/* The payload shapes socket.io-parser's isPayloadValid accepts. */
static int check_payload(struct sio_packet *p)
{
	json_object *d = p->data;

	switch (p->type) {
	case SIO_CONNECT:
		return !d || json_object_is_type(d, json_type_object) ? 0 : SIO_ERR_PAYLOAD;
	case SIO_DISCONNECT:
		return d ? SIO_ERR_PAYLOAD : 0;
	case SIO_CONNECT_ERROR:
		return d && (json_object_is_type(d, json_type_string) ||
			     json_object_is_type(d, json_type_object)) ? 0 : SIO_ERR_PAYLOAD;
	case SIO_EVENT:
	case SIO_BINARY_EVENT: {
		json_object *first;

		if (!d || !json_object_is_type(d, json_type_array) ||
		    json_object_array_length(d) == 0)
			return SIO_ERR_PAYLOAD;
		first = json_object_array_get_idx(d, 0);
		if (json_object_is_type(first, json_type_string)) {
			p->event = json_object_get_string(first);
			p->event_len = (size_t)json_object_get_string_len(first);
			return sio_is_reserved_event(p->event, p->event_len) ? SIO_ERR_PAYLOAD : 0;
		}
		return json_object_is_type(first, json_type_int) ||
		       json_object_is_type(first, json_type_double) ? 0 : SIO_ERR_PAYLOAD;
	}
	case SIO_ACK:
	case SIO_BINARY_ACK:
		return d && json_object_is_type(d, json_type_array) ? 0 : SIO_ERR_PAYLOAD;
	}
	return SIO_ERR_TYPE;
}

int sio_decode(const char *s, size_t len, struct sio_packet *p, struct json_tokener *tok)
{
	size_t i = 1;
	int rc;

	memset(p, 0, sizeof(*p));
	if (len == 0 || s[0] < '0' || s[0] > '6')
		return SIO_ERR_TYPE;
	p->type = (enum sio_type)(s[0] - '0');

	if (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK) {
		size_t start = i;
		uint64_t n;

		while (i < len && s[i] != '-')
			i++;
		if (i == len || !util_parse_u64(s + start, i - start, SIO_MAX_ATTACHMENTS, &n))
			return SIO_ERR_ATTACHMENTS;
		p->attachments = (unsigned)n;
		i++; /* '-' */
	}

	if (i < len && s[i] == '/') {
		size_t start = i;

		while (i < len && s[i] != ',')
			i++;
		p->nsp = s + start;
		p->nsp_len = i - start;
		if (i < len)
			i++; /* ',' */
	} else {
		p->nsp = "/";
		p->nsp_len = 1;
	}

	if (i < len && s[i] >= '0' && s[i] <= '9') {
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (!util_parse_u64(s + start, i - start, SIO_MAX_ACK_ID, &p->id))
			return SIO_ERR_ID;
		p->has_id = true;
	}

	if (i < len) {
		p->payload_off = i;
		rc = parse_json(s + i, len - i, tok, &p->data);
		if (rc < 0)
			return rc;
	}
	rc = check_payload(p);
	if (rc < 0) {
		sio_packet_clear(p);
		return rc;
	}
	return 0;
}

void sio_packet_clear(struct sio_packet *p)
{
	json_object_put(p->data);
	p->data = NULL;
	p->event = NULL;
}

const char *sio_error_message(int err)
{
	switch (err) {
	case SIO_ERR_TYPE: return "unknown packet type";
	case SIO_ERR_ATTACHMENTS: return "illegal attachments";
	case SIO_ERR_NAMESPACE: return "invalid namespace";
	case SIO_ERR_ID: return "invalid ack id";
	case SIO_ERR_JSON: return "invalid payload";
	case SIO_ERR_PAYLOAD: return "invalid payload for packet type";
	case SIO_ERR_NOMEM: return "out of memory";
	default: return "unknown error";
	}
}
