#include "autoconfig.h"

#include "sio.h"
#include "util.h"

#include <ctype.h>
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

/* RFC 8259 grammar, as JSON.parse applies it: json-c, even strict, lets
 * NaN, Infinity, "1." and raw control characters in strings through, and a
 * JavaScript client could not parse them back. Depth is json-c's to limit. */
static bool strict_value(const char *s, size_t len, size_t *i, int depth);

static void skip_ws(const char *s, size_t len, size_t *i)
{
	while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r'))
		(*i)++;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool strict_string(const char *s, size_t len, size_t *i)
{
	for ((*i)++; *i < len; (*i)++) {
		unsigned char c = (unsigned char)s[*i];

		if (c == '"') {
			(*i)++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++(*i) >= len)
				return false;
			c = (unsigned char)s[*i];
			if (c == 'u') {
				for (int k = 0; k < 4; k++) {
					if (++(*i) >= len || !isxdigit((unsigned char)s[*i]))
						return false;
				}
			} else if (!strchr("\"\\/bfnrt", c) || !c) {
				return false;
			}
		}
	}
	return false;
}

static bool strict_number(const char *s, size_t len, size_t *i)
{
	if (*i < len && s[*i] == '-')
		(*i)++;
	if (*i >= len || !is_digit(s[*i]))
		return false;
	if (s[*i] == '0')
		(*i)++;
	else
		while (*i < len && is_digit(s[*i]))
			(*i)++;
	if (*i < len && s[*i] == '.') {
		(*i)++;
		if (*i >= len || !is_digit(s[*i]))
			return false;
		while (*i < len && is_digit(s[*i]))
			(*i)++;
	}
	if (*i < len && (s[*i] == 'e' || s[*i] == 'E')) {
		(*i)++;
		if (*i < len && (s[*i] == '+' || s[*i] == '-'))
			(*i)++;
		if (*i >= len || !is_digit(s[*i]))
			return false;
		while (*i < len && is_digit(s[*i]))
			(*i)++;
	}
	return true;
}

static bool strict_literal(const char *s, size_t len, size_t *i, const char *lit)
{
	size_t n = strlen(lit);

	if (len - *i < n || memcmp(s + *i, lit, n) != 0)
		return false;
	*i += n;
	return true;
}

static bool strict_container(const char *s, size_t len, size_t *i, char close, bool object,
			     int depth)
{
	if (depth >= SIO_JSON_DEPTH)
		return false; /* recursion is bounded before json-c sees it */
	(*i)++;
	skip_ws(s, len, i);
	if (*i < len && s[*i] == close) {
		(*i)++;
		return true;
	}
	for (;;) {
		if (object) {
			if (*i >= len || s[*i] != '"' || !strict_string(s, len, i))
				return false;
			skip_ws(s, len, i);
			if (*i >= len || s[*i] != ':')
				return false;
			(*i)++;
		}
		if (!strict_value(s, len, i, depth + 1))
			return false;
		skip_ws(s, len, i);
		if (*i < len && s[*i] == ',') {
			(*i)++;
			skip_ws(s, len, i);
			continue;
		}
		if (*i < len && s[*i] == close) {
			(*i)++;
			return true;
		}
		return false;
	}
}

static bool strict_value(const char *s, size_t len, size_t *i, int depth)
{
	skip_ws(s, len, i);
	if (*i >= len)
		return false;
	switch (s[*i]) {
	case '{': return strict_container(s, len, i, '}', true, depth);
	case '[': return strict_container(s, len, i, ']', false, depth);
	case '"': return strict_string(s, len, i);
	case 't': return strict_literal(s, len, i, "true");
	case 'f': return strict_literal(s, len, i, "false");
	case 'n': return strict_literal(s, len, i, "null");
	default: return strict_number(s, len, i);
	}
}

bool sio_json_strict(const char *s, size_t len)
{
	size_t i = 0;

	if (!strict_value(s, len, &i, 0))
		return false;
	skip_ws(s, len, &i);
	return i == len;
}

/* After a failed parse the tokener may still hold half a surrogate pair
 * (json-c 0.16's json_tokener_reset keeps it), and one client's packet must
 * never change how the next one decodes. Its fields are private, and the
 * caller owns the tokener, so it is cleaned through the public API: a
 * complete pair, parsed from a reset, leaves nothing pending; the result is
 * a fresh tokener's state as far as strings are concerned. t_sio checks it
 * (a broken pair, then a lone low surrogate). */
static void tokener_scrub(struct json_tokener *tok)
{
	static const char pair[] = "\"\\ud800\\udc00\"";

	json_tokener_reset(tok);
	json_object_put(json_tokener_parse_ex(tok, pair, (int)sizeof(pair) - 1));
	json_tokener_reset(tok);
}

static int parse_json(const char *s, size_t len, struct json_tokener *tok, json_object **out)
{
	json_object *obj;

	if (len > INT32_MAX - 1 || !sio_json_strict(s, len))
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
		tokener_scrub(tok);
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
		if (!p->data)
			return SIO_ERR_PAYLOAD; /* "null": no packet type takes it */
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
