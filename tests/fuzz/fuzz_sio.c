/*
 * Fuzz target: the Socket.IO packet decoder (sio_decode), fed the data of
 * an Engine.IO message (the "4" already stripped), with one tokener reused
 * across inputs as the server does.
 *
 * Invariants, beyond "no memory error, no UB, no leak":
 *  - on failure the packet holds nothing to release;
 *  - on success the fields agree with the input: the type digit, the
 *    attachment count only on binary types and at most SIO_MAX_ATTACHMENTS,
 *    a namespace that is "/" or a slice of the input starting with '/' and
 *    holding no ',', an ack id no larger than SIO_MAX_ACK_ID, a payload of
 *    the shape the type requires and an event name that is not reserved;
 *    payload_off points at the JSON text that gave the payload;
 *  - the payload is JSON as JSON.parse (hence socket.io-parser) reads it,
 *    checked against a strict RFC 8259 validator below: what it rejects,
 *    sio_decode must reject; valid JSON of depth <= 31 in valid UTF-8 is
 *    never refused as "invalid payload";
 *  - re-encoding the packet as the reference encoder would
 *    (<type>[<n>-][<nsp>,][<id>][<json>]) and decoding that gives the same
 *    packet: what we accept, we can also say;
 *  - a packet leaves nothing in the shared tokener that changes the next.
 */
#include "autoconfig.h"

#include "sio.h"
#include "fuzz.h"

#include <inttypes.h>

static struct json_tokener *tok;

/* ---- a strict JSON validator (RFC 8259, as JSON.parse) ----------------- */

struct jv {
	const unsigned char *s;
	size_t len, i;
	int depth, max_depth;
};

static void jv_ws(struct jv *v)
{
	while (v->i < v->len && (v->s[v->i] == ' ' || v->s[v->i] == '\t' ||
				 v->s[v->i] == '\n' || v->s[v->i] == '\r'))
		v->i++;
}

static bool jv_lit(struct jv *v, const char *lit)
{
	size_t n = strlen(lit);

	if (v->len - v->i < n || memcmp(v->s + v->i, lit, n) != 0)
		return false;
	v->i += n;
	return true;
}

static bool jv_digits(struct jv *v)
{
	size_t start = v->i;

	while (v->i < v->len && v->s[v->i] >= '0' && v->s[v->i] <= '9')
		v->i++;
	return v->i > start;
}

static bool jv_number(struct jv *v)
{
	if (v->i < v->len && v->s[v->i] == '-')
		v->i++;
	if (v->i < v->len && v->s[v->i] == '0')
		v->i++;
	else if (!(v->i < v->len && v->s[v->i] >= '1' && v->s[v->i] <= '9') || !jv_digits(v))
		return false;
	if (v->i < v->len && v->s[v->i] == '.') {
		v->i++;
		if (!jv_digits(v))
			return false;
	}
	if (v->i < v->len && (v->s[v->i] == 'e' || v->s[v->i] == 'E')) {
		v->i++;
		if (v->i < v->len && (v->s[v->i] == '+' || v->s[v->i] == '-'))
			v->i++;
		if (!jv_digits(v))
			return false;
	}
	return true;
}

static bool jv_string(struct jv *v)
{
	if (v->i >= v->len || v->s[v->i] != '"')
		return false;
	for (v->i++; v->i < v->len; v->i++) {
		unsigned char c = v->s[v->i];

		if (c == '"') {
			v->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (++v->i >= v->len)
			return false;
		c = v->s[v->i];
		if (c == 'u') {
			for (int k = 0; k < 4; k++) {
				if (++v->i >= v->len || !strchr("0123456789abcdefABCDEF", v->s[v->i]) ||
				    !v->s[v->i])
					return false;
			}
		} else if (!strchr("\"\\/bfnrt", c) || !c) {
			return false;
		}
	}
	return false;
}

static bool jv_value(struct jv *v);

static bool jv_container(struct jv *v, unsigned char open, unsigned char close)
{
	bool first = true;

	v->i++; /* open */
	if (++v->depth > v->max_depth)
		v->max_depth = v->depth;
	if (v->depth > 1000)
		return false;
	for (;;) {
		jv_ws(v);
		if (v->i < v->len && v->s[v->i] == close && first) {
			v->i++;
			break;
		}
		if (open == '{') {
			if (!jv_string(v))
				return false;
			jv_ws(v);
			if (v->i >= v->len || v->s[v->i] != ':')
				return false;
			v->i++;
		}
		if (!jv_value(v))
			return false;
		jv_ws(v);
		if (v->i < v->len && v->s[v->i] == ',') {
			v->i++;
			first = false;
			continue;
		}
		if (v->i < v->len && v->s[v->i] == close) {
			v->i++;
			break;
		}
		return false;
	}
	v->depth--;
	return true;
}

static bool jv_value(struct jv *v)
{
	jv_ws(v);
	if (v->i >= v->len)
		return false;
	switch (v->s[v->i]) {
	case '{': return jv_container(v, '{', '}');
	case '[': return jv_container(v, '[', ']');
	case '"': return jv_string(v);
	case 't': return jv_lit(v, "true");
	case 'f': return jv_lit(v, "false");
	case 'n': return jv_lit(v, "null");
	default: return jv_number(v);
	}
}

/* JSON.parse(text) would succeed; *depth is the deepest nesting. */
static bool json_strict(const char *text, size_t len, int *depth)
{
	struct jv v = { (const unsigned char *)text, len, 0, 0, 0 };
	bool ok = jv_value(&v);

	jv_ws(&v);
	*depth = v.max_depth;
	return ok && v.i == len;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Where sio_decode's framing says the JSON starts (its grammar, which is
 * stricter than the reference's): only used once it got that far. */
static size_t json_start(const char *s, size_t len)
{
	size_t i = 1;

	if (s[0] == '5' || s[0] == '6') {
		while (i < len && s[i] != '-')
			i++;
		i++;
	}
	if (i < len && s[i] == '/') {
		while (i < len && s[i] != ',')
			i++;
		if (i < len)
			i++;
	}
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* ---- the packet ------------------------------------------------------------ */

static void check_fields(const char *buf, size_t size, const struct sio_packet *p)
{
	json_object *d = p->data;

	FUZZ_CHECK(size > 0 && (int)p->type == buf[0] - '0' && p->type <= SIO_BINARY_ACK);
	if (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK)
		FUZZ_CHECK(p->attachments <= SIO_MAX_ATTACHMENTS);
	else
		FUZZ_CHECK(p->attachments == 0);
	FUZZ_CHECK(p->nsp != NULL && p->nsp_len > 0 && p->nsp[0] == '/');
	if (fuzz_inside(p->nsp, p->nsp_len, buf, size))
		FUZZ_CHECK(memchr(p->nsp, ',', p->nsp_len) == NULL);
	else
		FUZZ_CHECK(p->nsp_len == 1);
	FUZZ_CHECK(sio_is_main_nsp(p->nsp, p->nsp_len) == (p->nsp_len == 1));
	if (p->has_id)
		FUZZ_CHECK(p->id <= SIO_MAX_ACK_ID);
	else
		FUZZ_CHECK(p->id == 0);

	switch (p->type) {
	case SIO_CONNECT:
		FUZZ_CHECK(!d || json_object_is_type(d, json_type_object));
		break;
	case SIO_DISCONNECT:
		FUZZ_CHECK(!d);
		break;
	case SIO_CONNECT_ERROR:
		FUZZ_CHECK(d && (json_object_is_type(d, json_type_object) ||
				 json_object_is_type(d, json_type_string)));
		break;
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		FUZZ_CHECK(d && json_object_is_type(d, json_type_array) &&
			   json_object_array_length(d) > 0);
		break;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		FUZZ_CHECK(d && json_object_is_type(d, json_type_array));
		break;
	}
	if (p->event) {
		json_object *first = json_object_array_get_idx(d, 0);

		FUZZ_CHECK(p->type == SIO_EVENT || p->type == SIO_BINARY_EVENT);
		FUZZ_CHECK(json_object_is_type(first, json_type_string));
		FUZZ_CHECK(p->event == json_object_get_string(first));
		FUZZ_CHECK(p->event_len == (size_t)json_object_get_string_len(first));
		FUZZ_CHECK(!sio_is_reserved_event(p->event, p->event_len));
	}
}

/* The payload as JSON.parse sees it. Returns false when the comparisons
 * that follow cannot hold (a payload only json-c calls JSON, e.g. NaN). */
static bool check_payload_text(const char *buf, size_t size, const struct sio_packet *p)
{
	const char *text = buf + p->payload_off;
	size_t len = size - p->payload_off;
	json_object *raw;
	int depth;

	if (!p->data && !p->payload_off)
		return true; /* no payload */
	FUZZ_CHECK(p->payload_off >= 1 && p->payload_off < size);
	FUZZ_CHECK(p->payload_off == json_start(buf, size));
	if (!json_strict(text, len, &depth)) {
		/* NaN, Infinity, "1.", raw control characters in strings... */
		FUZZ_CHECK(!"sio_decode accepted JSON that JSON.parse refuses");
		return false;
	}
	if (!p->data) {
		/* JSON null: no type takes it (socket.io-parser isPayloadValid). */
		FUZZ_CHECK(!"sio_decode accepted a null payload");
		return true;
	}
	/* The raw JSON the application is handed is the validated payload. */
	json_tokener_reset(tok);
	raw = json_tokener_parse_ex(tok, text, (int)len);
	if (!raw && json_tokener_get_error(tok) == json_tokener_continue)
		raw = json_tokener_parse_ex(tok, "", 1);
	FUZZ_CHECK(raw != NULL && json_object_equal(raw, p->data));
	json_object_put(raw);
	return true;
}

/* The reference encoder's string form (socket.io-parser encodeAsString). */
static char *encode(const char *buf, size_t size, const struct sio_packet *p, size_t *len)
{
	const char *json = "";
	size_t jlen = 0, cap, n;
	char *out;

	if (p->data) {
		json = json_object_to_json_string_ext(p->data, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE);
		FUZZ_CHECK(json != NULL);
		jlen = strlen(json);
	}
	cap = 1 + 24 + p->nsp_len + 1 + 24 + jlen + 1;
	out = fuzz_alloc(cap);
	n = (size_t)snprintf(out, cap, "%d", (int)p->type);
	if (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK)
		n += (size_t)snprintf(out + n, cap - n, "%u-", p->attachments);
	/* The encoder writes the namespace unless it is "/"; a "/" the input
	 * spelled out is written too, to keep the comparison exact. */
	if (fuzz_inside(p->nsp, p->nsp_len, buf, size)) {
		memcpy(out + n, p->nsp, p->nsp_len);
		n += p->nsp_len;
		out[n++] = ',';
	}
	if (p->has_id)
		n += (size_t)snprintf(out + n, cap - n, "%" PRIu64, p->id);
	memcpy(out + n, json, jlen);
	n += jlen;
	FUZZ_CHECK(n < cap);
	*len = n;
	return out;
}

static void check_roundtrip(const char *buf, size_t size, const struct sio_packet *p)
{
	struct sio_packet q;
	size_t elen;
	char *enc = encode(buf, size, p, &elen);
	char *exact = fuzz_alloc(elen);
	int rc;

	memcpy(exact, enc, elen);
	free(enc);
	rc = sio_decode(exact, elen, &q, tok);
	if (rc != 0)
		fprintf(stderr, "re-encoded: %.*s (%s)\n", (int)elen, exact, sio_error_message(rc));
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(q.type == p->type && q.attachments == p->attachments);
	FUZZ_CHECK(q.nsp_len == p->nsp_len && memcmp(q.nsp, p->nsp, p->nsp_len) == 0);
	FUZZ_CHECK(q.has_id == p->has_id && q.id == p->id);
	FUZZ_CHECK(!q.data == !p->data);
	if (p->data)
		FUZZ_CHECK(json_object_equal(q.data, p->data));
	FUZZ_CHECK(!q.event == !p->event);
	if (p->event)
		FUZZ_CHECK(q.event_len == p->event_len &&
			   memcmp(q.event, p->event, p->event_len) == 0);
	sio_packet_clear(&q);
	free(exact);
}

/* sio_decode got as far as the JSON and refused it: it must not be JSON
 * that JSON.parse takes (within the nesting limit, in valid UTF-8). */
static void check_refused_json(const char *buf, size_t size)
{
	size_t i = json_start(buf, size);
	int depth;

	FUZZ_CHECK(i < size);
	/* A bare number or literal may be refused as JSON, though JSON.parse
	 * takes it (json-c wants a delimiter after it): no packet type accepts
	 * one, so the answer is the same. */
	while (i < size && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i < size && buf[i] != '{' && buf[i] != '[' && buf[i] != '"')
		return;
	if (utf8_valid((const unsigned char *)buf + i, size - i) &&
	    json_strict(buf + i, size - i, &depth) && depth <= 31) {
		fprintf(stderr, "valid JSON refused: %.*s\n", (int)(size - i), buf + i);
		FUZZ_CHECK(0);
	}
}

/* The server shares one tokener between all connections: what one packet
 * leaves in it must not change how the next one decodes. A probe with a
 * \u escape shows it (json-c 0.16 keeps a pending high surrogate across
 * json_tokener_reset); decoding it also clears that state, so each input
 * starts from a clean tokener and a crash reproduces from its input alone. */
static void check_tokener_clean(void)
{
	static const char probe[] = "2[\"\\u0041\"]";
	struct sio_packet p;
	int rc = sio_decode(probe, sizeof(probe) - 1, &p, tok);

	FUZZ_CHECK(rc == 0 && p.event != NULL);
	FUZZ_CHECK(p.event_len == 1 && p.event[0] == 'A'); /* no state left over */
	sio_packet_clear(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);
	struct sio_packet p;
	int rc;

	if (!tok) {
		tok = sio_tokener_new();
		if (!tok)
			abort();
	}
	rc = sio_decode(buf, size, &p, tok);
	FUZZ_CHECK(sio_error_message(rc) != NULL);
	if (rc < 0) {
		FUZZ_CHECK(rc >= SIO_ERR_NOMEM);
		FUZZ_CHECK(p.data == NULL && p.event == NULL);
		if (rc == SIO_ERR_JSON)
			check_refused_json(buf, size);
	} else {
		FUZZ_CHECK(rc == 0);
		check_fields(buf, size, &p);
		if (check_payload_text(buf, size, &p))
			check_roundtrip(buf, size, &p);
		sio_packet_clear(&p);
		FUZZ_CHECK(p.data == NULL && p.event == NULL);
		sio_packet_clear(&p); /* clearing twice is harmless */
	}
	check_tokener_clean();
	free(buf);
	return 0;
}
