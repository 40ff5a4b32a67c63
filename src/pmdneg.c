#include "autoconfig.h"

#include "pmdneg.h"

#include <stdio.h>
#include <string.h>

/* RFC 6455 §9.1 syntax, RFC 7692 §7.1 semantics. */

/*
 *  extension-list = 1#extension
 *  extension      = extension-token *( ";" extension-param )
 *  extension-param = token [ "=" (token | quoted-string) ]
 * with optional whitespace around the separators. A quoted value must still
 * be a token once unescaped (RFC 6455 §9.1).
 */

struct cursor {
	const char *s;
	size_t len, pos;
};

static bool is_tchar(unsigned char c)
{
	/* RFC 9110 §5.6.2 */
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(struct cursor *c)
{
	while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t'))
		c->pos++;
}

static bool peek(const struct cursor *c, char ch)
{
	return c->pos < c->len && c->s[c->pos] == ch;
}

/* A token at the cursor; false when there is none. */
static bool token(struct cursor *c, const char **tok, size_t *tok_len)
{
	size_t start = c->pos;

	while (c->pos < c->len && is_tchar((unsigned char)c->s[c->pos]))
		c->pos++;
	*tok = c->s + start;
	*tok_len = c->pos - start;
	return *tok_len > 0;
}

#define VALUE_MAX 8 /* longer values are kept truncated: none of ours is */

struct value {
	bool present;
	size_t len;            /* full unescaped length */
	char text[VALUE_MAX];  /* the first VALUE_MAX bytes */
};

/* A token or a quoted-string after "=". */
static bool param_value(struct cursor *c, struct value *v)
{
	const char *tok;
	size_t tok_len;

	v->present = true;
	v->len = 0;
	if (!peek(c, '"')) {
		if (!token(c, &tok, &tok_len))
			return false;
		v->len = tok_len;
		memcpy(v->text, tok, tok_len < VALUE_MAX ? tok_len : VALUE_MAX);
		return true;
	}
	c->pos++;
	for (;;) {
		unsigned char ch;

		if (c->pos >= c->len)
			return false; /* unterminated */
		ch = (unsigned char)c->s[c->pos++];
		if (ch == '"')
			break;
		if (ch == '\\') {
			if (c->pos >= c->len)
				return false;
			ch = (unsigned char)c->s[c->pos++];
		}
		if (!is_tchar(ch))
			return false;
		if (v->len < VALUE_MAX)
			v->text[v->len] = (char)ch;
		v->len++;
	}
	return v->len > 0;
}

static bool name_is(const char *tok, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(tok, s, len) == 0;
}

/* RFC 7692 §7.1.2.1: 1*DIGIT without a leading zero, 8 to 15. 0 if not. */
static int window_bits(const struct value *v)
{
	if (v->len == 1 && v->text[0] >= '8' && v->text[0] <= '9')
		return v->text[0] - '0';
	if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5')
		return 10 + v->text[1] - '0';
	return 0;
}

enum {
	P_SERVER_NO_CT = 1 << 0,
	P_CLIENT_NO_CT = 1 << 1,
	P_SERVER_MWB = 1 << 2,
	P_CLIENT_MWB = 1 << 3,
};

struct offer {
	bool valid;      /* RFC 7692 §7.1: a server MUST decline an invalid offer */
	unsigned seen;   /* P_* bits */
	int server_mwb;  /* 0 when not offered */
};

/* Applies one parameter of a permessage-deflate offer. */
static void offer_param(struct offer *o, const char *name, size_t name_len,
			const struct value *v)
{
	unsigned bit;

	if (name_is(name, name_len, "server_no_context_takeover"))
		bit = P_SERVER_NO_CT;
	else if (name_is(name, name_len, "client_no_context_takeover"))
		bit = P_CLIENT_NO_CT;
	else if (name_is(name, name_len, "server_max_window_bits"))
		bit = P_SERVER_MWB;
	else if (name_is(name, name_len, "client_max_window_bits"))
		bit = P_CLIENT_MWB;
	else
		bit = 0; /* a parameter not defined for offers */
	if (!bit || (o->seen & bit)) {
		o->valid = false;
		return;
	}
	o->seen |= bit;
	switch (bit) {
	case P_SERVER_NO_CT:
	case P_CLIENT_NO_CT:
		if (v->present) /* §7.1.1: these have no value */
			o->valid = false;
		break;
	case P_SERVER_MWB: /* §7.1.2.1: the value is required */
		o->server_mwb = v->present ? window_bits(v) : 0;
		if (!o->server_mwb)
			o->valid = false;
		break;
	case P_CLIENT_MWB: /* §7.1.2.2: the value is optional */
		if (v->present && !window_bits(v))
			o->valid = false;
		break;
	}
}

/*
 * What we answer, and why.
 *
 * server_no_context_takeover: always in standalone mode. §7.1.1.1 lets a
 * server add it to any response. It makes every message we send an
 * independent DEFLATE stream, so one compressed frame serves every client.
 * In shared mode only when the client's offer carries it (we must then
 * answer it). Otherwise the client keeps our context, and a broadcast is
 * deflated once per group of clients holding the same previous payload
 * (pmd_frame_with_dict, the window model below).
 *
 * client_no_context_takeover: always, whether offered or not. §7.1.1.2:
 * "A server MAY include the client_no_context_takeover extension parameter
 * in an extension negotiation response", and the client then "MUST NOT use
 * context takeover". This is the legal choice that costs least memory: no
 * per-client inflate window (32 KB + 7 KB of zlib state each) survives
 * between messages, so one shared inflater does for all. The alternative,
 * keeping a window per client that did not offer it, would cost ~39 KB
 * times the number of clients. That is 390 MB for 10k clients, just for
 * client messages that are a few bytes long here. Checked by hand: ws
 * 8.21 (socket.io-client's transport) and Chromium 156 accept the
 * parameter unasked and then compress each message on its own. ws refuses
 * the handshake only if its user set clientNoContextTakeover: false.
 * Safari before 15.4 is reported to have ignored the parameter
 * (uNetworking/uWebSockets#1347, #1431). Such a client's second message
 * may refer back and then fails as PMD_ERR_CORRUPT, which is safe but
 * closes the connection. The way out is the daemon's switch to turn
 * compression off, not 39 KB per client for everybody.
 *
 * server_max_window_bits: the offered value is echoed back (§7.1.2.1:
 * accepting an offer with the parameter means answering it with the same
 * or a smaller value). In standalone mode an offer of less than 15 is
 * declined ("the server doesn't support the offered configuration"),
 * because those frames are compressed once with a 32 KB window. Shared
 * mode accepts 8 to 15: frames are built per window size anyway, each
 * client getting the one for its window. No browser and no ws client sends
 * it by default. We never add it unasked: 15 is the default anyway.
 *
 * client_max_window_bits: never answered. The offer only says that the
 * client could accept a limit (§7.1.2.2). Our inflater always has a 32 KB
 * window, which inflates any window size, so there is nothing to limit.
 * Answering it would not save memory here, because inflate state is shared
 * and is not kept between messages. We must never send it if it was not
 * offered.
 */
static int respond(enum pmdneg_mode mode, const struct offer *o, struct pmdneg_params *out,
		   char *resp, size_t resp_len)
{
	/* Shared mode keeps the server's context unless the client asked us
	 * not to (§7.1.1.1: then the response must say so too). */
	bool no_server_ct = mode != PMDNEG_MODE_SHARED || (o->seen & P_SERVER_NO_CT);
	int mwb = o->server_mwb ? o->server_mwb : 15;
	int n;

	if (resp_len < PMDNEG_RESPONSE_MAX)
		return PMDNEG_DECLINED;
	n = snprintf(resp, resp_len, "permessage-deflate%s; client_no_context_takeover",
		     no_server_ct ? "; server_no_context_takeover" : "");
	if (n > 0 && (o->seen & P_SERVER_MWB))
		n += snprintf(resp + n, resp_len - (size_t)n, "; server_max_window_bits=%d", mwb);
	if (n < 0 || (size_t)n >= resp_len) {
		resp[0] = '\0';
		return PMDNEG_DECLINED;
	}
	out->server_no_context_takeover = no_server_ct;
	out->client_no_context_takeover = true;
	out->server_max_window_bits = mwb;
	out->client_max_window_bits = 15;
	out->shared = !no_server_ct;
	return PMDNEG_ACCEPTED;
}

int pmdneg_mode_parse(const char *s, enum pmdneg_mode *out)
{
	if (strcmp(s, "off") == 0)
		*out = PMDNEG_MODE_OFF;
	else if (strcmp(s, "standalone") == 0)
		*out = PMDNEG_MODE_STANDALONE;
	else if (strcmp(s, "shared") == 0)
		*out = PMDNEG_MODE_SHARED;
	else if (strcmp(s, "on") == 0)
		*out = PMDNEG_MODE_DEFAULT;
	else
		return -1;
	return 0;
}

const char *pmdneg_mode_name(enum pmdneg_mode mode)
{
	switch (mode) {
	case PMDNEG_MODE_OFF:
		return "off";
	case PMDNEG_MODE_STANDALONE:
		return "standalone";
	case PMDNEG_MODE_SHARED:
		return "shared";
	}
	return "?";
}

enum pmdneg_result pmdneg_negotiate(const char *header_value, size_t len,
				    struct pmdneg_params *out, char *response,
				    size_t response_len)
{
	return pmdneg_negotiate_mode(PMDNEG_MODE_STANDALONE, header_value, len, out, response,
				  response_len);
}

enum pmdneg_result pmdneg_negotiate_mode(enum pmdneg_mode mode, const char *header_value,
					 size_t len, struct pmdneg_params *out,
					 char *response, size_t response_len)
{
	struct cursor c = { header_value, len, 0 };
	struct offer chosen = { 0 };
	bool found = false;

	if (response && response_len)
		response[0] = '\0';
	/* The whole header is parsed even after a usable offer: a malformed
	 * header is declined as a whole. */
	for (;;) {
		const char *name;
		size_t name_len;
		struct offer o = { .valid = true };
		bool pmd;

		skip_ows(&c);
		if (c.pos == c.len)
			break;
		if (peek(&c, ',')) { /* empty list element (RFC 9110 §5.6.1) */
			c.pos++;
			continue;
		}
		if (!token(&c, &name, &name_len))
			return PMDNEG_MALFORMED;
		pmd = name_is(name, name_len, "permessage-deflate");
		skip_ows(&c);
		while (peek(&c, ';')) {
			const char *pname;
			size_t pname_len;
			struct value v = { 0 };

			c.pos++;
			skip_ows(&c);
			if (!token(&c, &pname, &pname_len))
				return PMDNEG_MALFORMED;
			skip_ows(&c);
			if (peek(&c, '=')) {
				c.pos++;
				skip_ows(&c);
				if (!param_value(&c, &v))
					return PMDNEG_MALFORMED;
				skip_ows(&c);
			}
			if (pmd)
				offer_param(&o, pname, pname_len, &v);
		}
		if (c.pos < c.len && !peek(&c, ','))
			return PMDNEG_MALFORMED;
		if (c.pos < c.len)
			c.pos++;
		/* Standalone frames are built once with a 32 KB window, so
		 * that mode declines a smaller one; shared mode builds frames
		 * per window size. */
		if (pmd && !found && o.valid &&
		    (!o.server_mwb || o.server_mwb == 15 || mode == PMDNEG_MODE_SHARED)) {
			chosen = o;
			found = true;
		}
	}
	if (!found || !response || mode == PMDNEG_MODE_OFF)
		return PMDNEG_DECLINED;
	return respond(mode, &chosen, out, response, response_len);
}
