#include "autoconfig.h"

#include "jwt.h"
#include "jose.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#define JWT_MIN_RSA_BITS 2048  /* RFC 7518 §3.3 */
#define JWT_MAX_PATH_KEY 255   /* one key of the role-claim path */

struct jwt_key {
	enum jwt_family family;
	EVP_PKEY *pkey;            /* RS, ES */
	unsigned char *secret;     /* HS */
	size_t secret_len;
};

/* ---- results ------------------------------------------------------------ */

const char *jwt_result_code(int r)
{
	switch (r) {
	case JWT_OK:
		return NULL;
	case JWT_EXPIRED:
	case JWT_NOT_YET_VALID:
		return "token_expired";
	case JWT_NO_ROLE:
		return "role_invalid";
	default:
		return "token_invalid";
	}
}

const char *jwt_result_message(int r)
{
	switch (r) {
	case JWT_OK: return "token valid";
	case JWT_MALFORMED: return "malformed token";
	case JWT_BAD_ALG: return "token algorithm not accepted";
	case JWT_BAD_SIGNATURE: return "bad token signature";
	case JWT_EXPIRED: return "token expired";
	case JWT_NOT_YET_VALID: return "token not yet valid";
	case JWT_BAD_AUDIENCE: return "token not meant for this audience";
	case JWT_BAD_ISSUER: return "token from an unexpected issuer";
	case JWT_NO_ROLE: return "token carries no usable role";
	case JWT_INTERNAL: return "internal error verifying the token";
	default: return "unknown token error";
	}
}

void jwt_policy_init(struct jwt_policy *p)
{
	p->role_claim = JWT_DEFAULT_ROLE_CLAIM;
	p->audience = NULL;
	p->issuer = NULL;
	p->leeway_sec = JWT_DEFAULT_LEEWAY;
}

/* ---- keys --------------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int key_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t count_of(const char *s, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const char *p = s, *end = s + len;

	while ((size_t)(end - p) >= nl) {
		const char *q = memmem(p, (size_t)(end - p), needle, nl);

		if (!q)
			break;
		n++;
		p = q + nl;
	}
	return n;
}

/* One PEM public key: RSA >= 2048 bits, or EC on P-256. */
static int load_pem(const char *data, size_t len, struct jwt_key *k, char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN ";
	const char *label = data + strlen(begin), *end = data + len, *dash;
	size_t label_len;
	OSSL_DECODER_CTX *dctx;
	EVP_PKEY_CTX *pctx;
	EVP_PKEY *pkey = NULL;
	const unsigned char *p = (const unsigned char *)data;
	size_t left = len;
	int ok;

	dash = memmem(label, (size_t)(end - label), "-----", 5);
	label_len = dash ? (size_t)(dash - label) : 0;
	if (!dash || label_len > 64 || memchr(label, '\n', label_len))
		return key_error(err, errlen, "the key file starts like PEM but has no valid BEGIN line");
	if (memmem(label, label_len, "PRIVATE KEY", 11))
		return key_error(err, errlen, "the key file holds a private key (%.*s); give its public "
				 "half (openssl pkey -pubout): the daemon must not hold what signs tokens",
				 (int)label_len, label);
	if (label_len == 11 && memcmp(label, "CERTIFICATE", 11) == 0)
		return key_error(err, errlen, "the key file holds a certificate; give its public key "
				 "(openssl x509 -pubkey -noout)");
	if (!(label_len == 10 && memcmp(label, "PUBLIC KEY", 10) == 0) &&
	    !(label_len == 14 && memcmp(label, "RSA PUBLIC KEY", 14) == 0))
		return key_error(err, errlen, "unsupported PEM block '%.*s' in the key file; expected "
				 "PUBLIC KEY", (int)label_len, label);
	if (count_of(data, len, begin) != 1)
		return key_error(err, errlen, "the key file holds more than one PEM block");

	dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY,
					     NULL, NULL);
	if (!dctx)
		return key_error(err, errlen, "out of memory loading the public key");
	ok = OSSL_DECODER_from_data(dctx, &p, &left);
	OSSL_DECODER_CTX_free(dctx);
	if (!ok || !pkey)
		return key_error(err, errlen, "the PEM public key in the key file does not parse");

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		int bits = EVP_PKEY_get_bits(pkey);

		if (bits < JWT_MIN_RSA_BITS) {
			EVP_PKEY_free(pkey);
			return key_error(err, errlen, "the RSA key has %d bits; RFC 7518 section 3.3 "
					 "requires at least %d", bits, JWT_MIN_RSA_BITS);
		}
		k->family = JWT_FAMILY_RS;
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[64];
		size_t glen = 0;

		if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) ||
		    strcmp(group, SN_X9_62_prime256v1) != 0) {
			EVP_PKEY_free(pkey);
			return key_error(err, errlen, "the EC key is not on P-256 (only ES256 is "
					 "supported)");
		}
		k->family = JWT_FAMILY_ES;
	} else {
		const char *type = EVP_PKEY_get0_type_name(pkey);
		char name[32];

		snprintf(name, sizeof(name), "%s", type ? type : "unknown");
		EVP_PKEY_free(pkey);
		return key_error(err, errlen, "the public key is of type %s; only RSA (RS256) and "
				 "EC P-256 (ES256) are supported", name);
	}
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	ok = pctx && EVP_PKEY_public_check(pctx) == 1;
	EVP_PKEY_CTX_free(pctx);
	if (!ok) {
		EVP_PKEY_free(pkey);
		return key_error(err, errlen, "the public key in the key file fails its consistency "
				 "check");
	}
	k->pkey = pkey;
	return 0;
}

int jwt_key_load(const char *data, size_t len, struct jwt_key **out, char *err, size_t errlen)
{
	struct jwt_key *k;
	size_t i = 0;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (len > JWT_MAX_KEY_FILE)
		return key_error(err, errlen, "the key file is larger than %d bytes", JWT_MAX_KEY_FILE);
	k = calloc(1, sizeof(*k));
	if (!k)
		return key_error(err, errlen, "out of memory");
	while (i < len && is_space(data[i]))
		i++;
	if (len - i >= 11 && memcmp(data + i, "-----BEGIN ", 11) == 0) {
		if (load_pem(data + i, len - i, k, err, errlen) < 0)
			goto out_free;
		*out = k;
		return 0;
	}
	/* A PEM anywhere else, or a JWK, is a mistake, never a secret that
	 * happens to look like one: taking a public key as an HMAC secret is
	 * exactly the algorithm confusion we refuse. */
	if (count_of(data, len, "-----BEGIN ")) {
		key_error(err, errlen, "the key file holds a PEM block after other text");
		goto out_free;
	}
	if (i < len && data[i] == '{' && count_of(data, len, "\"kty\"")) {
		key_error(err, errlen, "the key file holds a JWK, which is not supported; give a PEM "
			  "public key or an HMAC secret");
		goto out_free;
	}
	/* One line ending, as `echo secret > file` leaves. */
	if (len && data[len - 1] == '\n') {
		len--;
		if (len && data[len - 1] == '\r')
			len--;
	}
	if (len < JWT_MIN_HMAC_SECRET) {
		key_error(err, errlen, "the HMAC secret is %zu bytes; RFC 7518 section 3.2 requires at "
			  "least %d (e.g. openssl rand -base64 48)", len, JWT_MIN_HMAC_SECRET);
		goto out_free;
	}
	k->secret = malloc(len);
	if (!k->secret) {
		key_error(err, errlen, "out of memory");
		goto out_free;
	}
	memcpy(k->secret, data, len);
	k->secret_len = len;
	k->family = JWT_FAMILY_HS;
	*out = k;
	return 0;
out_free:
	free(k);
	return -1;
}

void jwt_key_free(struct jwt_key *k)
{
	if (!k)
		return;
	if (k->secret) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum jwt_family jwt_key_family(const struct jwt_key *k)
{
	return k->family;
}

/* ---- algorithms and signatures -------------------------------------------- */

struct alg {
	const char *name;
	enum jwt_family family;
	size_t min_secret;      /* HS: RFC 7518 §3.2, a key as long as the hash */
	const EVP_MD *(*md)(void);
};

static const struct alg algs[] = {
	{ "HS256", JWT_FAMILY_HS, 32, EVP_sha256 },
	{ "HS384", JWT_FAMILY_HS, 48, EVP_sha384 },
	{ "HS512", JWT_FAMILY_HS, 64, EVP_sha512 },
	{ "RS256", JWT_FAMILY_RS, 0, EVP_sha256 },
	{ "ES256", JWT_FAMILY_ES, 0, EVP_sha256 },
};

/* The algorithm the header names, if the key accepts it; "none" and every
 * name outside the key's family (an HS256 token against an RSA key: the
 * confusion attack) find nothing. */
static const struct alg *accepted_alg(const struct jwt_key *k, json_object *name)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (algs[i].family == k->family && jose_str_is(name, algs[i].name) &&
		    k->secret_len >= algs[i].min_secret)
			return &algs[i];
	}
	return NULL;
}

static int verify_hmac(const struct jwt_key *k, const struct alg *a, const char *input,
		       size_t input_len, const unsigned char *sig, size_t sig_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;

	if (!HMAC(a->md(), k->secret, (int)k->secret_len, (const unsigned char *)input, input_len,
		  mac, &mac_len)) {
		ERR_clear_error();
		return JWT_INTERNAL;
	}
	if (sig_len != mac_len || CRYPTO_memcmp(mac, sig, mac_len) != 0)
		return JWT_BAD_SIGNATURE;
	return JWT_OK;
}

/* JWS carries ECDSA as R || S, 32 bytes each (RFC 7518 §3.4); libcrypto
 * wants DER. Returns the DER length (the caller OPENSSL_free()s *der), 0
 * when out of memory. */
static size_t es256_der(const unsigned char *sig, unsigned char **der)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	int n = 0;

	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return 0;
	}
	*der = NULL;
	n = i2d_ECDSA_SIG(es, der);
	ECDSA_SIG_free(es);
	return n > 0 ? (size_t)n : 0;
}

static int verify_pkey(const struct jwt_key *k, const struct alg *a, const char *input,
		       size_t input_len, const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	int rc = JWT_INTERNAL;

	if (k->family == JWT_FAMILY_RS) {
		if (sig_len != (size_t)EVP_PKEY_get_size(k->pkey))
			return JWT_BAD_SIGNATURE;
	} else {
		if (sig_len != 64)
			return JWT_BAD_SIGNATURE;
		sig_len = es256_der(sig, &der);
		if (!sig_len)
			goto out;
		sig = der;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		goto out_free_der;
	if (EVP_DigestVerifyInit(ctx, &pctx, a->md(), NULL, k->pkey) != 1)
		goto out_free_ctx;
	if (k->family == JWT_FAMILY_RS &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto out_free_ctx;
	rc = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, input_len) == 1
		? JWT_OK : JWT_BAD_SIGNATURE;
out_free_ctx:
	EVP_MD_CTX_free(ctx);
out_free_der:
	OPENSSL_free(der);
out:
	/* A refused signature leaves errors on the thread's queue: they are
	 * not news to anyone else who uses libcrypto. */
	ERR_clear_error();
	return rc;
}

/* ---- claims -------------------------------------------------------------- */

/* A NumericDate (RFC 7519 §2) in whole seconds, rounded up: with integer
 * "now", now >= ceil(t) exactly when now >= t. */
static bool numeric_date(json_object *o, int64_t *out)
{
	if (json_object_is_type(o, json_type_int)) {
		/* Above INT64_MAX (uint64): the far future, as INT64_MAX. */
		*out = json_object_get_int64(o);
		return true;
	}
	if (json_object_is_type(o, json_type_double)) {
		double d = json_object_get_double(o);
		int64_t t;

		if (d != d)
			return false;
		if (d >= 9.2e18) {
			*out = INT64_MAX;
		} else if (d <= -9.2e18) {
			*out = INT64_MIN;
		} else {
			t = (int64_t)d; /* toward zero */
			*out = (double)t < d ? t + 1 : t;
		}
		return true;
	}
	return false;
}

static int64_t add_sat(int64_t a, int64_t b) /* b >= 0 */
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t sub_sat(int64_t a, int64_t b) /* b >= 0 */
{
	return a < INT64_MIN + b ? INT64_MIN : a - b;
}

/* One key of a role-claim path, from *pp; advances past it and its dot.
 * Returns false at the end (*pp at NUL) or on a malformed path (*pp not at
 * NUL). */
static bool path_key(const char **pp, char key[JWT_MAX_PATH_KEY + 1])
{
	const char *p = *pp, *start, *end;

	if (!*p)
		return false;
	if (*p == '"') {
		start = ++p;
		end = strchr(start, '"');
		if (!end)
			return false;
		p = end + 1;
	} else {
		start = p;
		while (*p && *p != '.' && *p != '"' && *p != '[')
			p++;
		end = p;
	}
	if (end == start || (size_t)(end - start) > JWT_MAX_PATH_KEY)
		return false;
	if (*p == '.' && p[1])
		p++;
	else if (*p)
		return false;
	memcpy(key, start, (size_t)(end - start));
	key[end - start] = '\0';
	*pp = p;
	return true;
}

/* Walks path through the payload; NULL when any step is missing, the path
 * is malformed, or a step is not an object. */
static json_object *resolve_path(json_object *payload, const char *path)
{
	char key[JWT_MAX_PATH_KEY + 1];
	json_object *cur = payload;
	const char *p = path;

	if (*p == '.')
		p++;
	if (!*p)
		return NULL;
	while (*p) {
		json_object *next;

		if (!path_key(&p, key) || !json_object_is_type(cur, json_type_object) ||
		    !json_object_object_get_ex(cur, key, &next))
			return NULL;
		cur = next;
	}
	return cur;
}

bool jwt_role_path_valid(const char *path)
{
	char key[JWT_MAX_PATH_KEY + 1];
	const char *p = path;

	if (!p)
		return false;
	if (*p == '.')
		p++;
	if (!*p)
		return false;
	while (*p) {
		if (!path_key(&p, key))
			return false;
	}
	return true;
}

static bool aud_contains(json_object *aud, const char *want)
{
	if (json_object_is_type(aud, json_type_string))
		return jose_str_is(aud, want);
	if (json_object_is_type(aud, json_type_array)) {
		for (size_t i = 0, n = json_object_array_length(aud); i < n; i++)
			if (jose_str_is(json_object_array_get_idx(aud, i), want))
				return true;
	}
	return false;
}

/* In order: issuer and audience (a token meant for someone else is
 * invalid, whatever its age), exp, nbf, iat, then the role. exp, nbf and
 * iat, when present, must be numbers: PostgREST ignores a claim of another
 * type, which would make a string exp a token that never expires. */
static int check_claims(json_object *pl, const struct jwt_policy *p, int64_t now,
			struct jwt_claims *out)
{
	json_object *v;
	int64_t t, leeway = p->leeway_sec > 0 ? p->leeway_sec : 0;
	const char *role;
	size_t role_len;

	if (p->issuer && (!json_object_object_get_ex(pl, "iss", &v) || !jose_str_is(v, p->issuer)))
		return JWT_BAD_ISSUER;
	if (p->audience && (!json_object_object_get_ex(pl, "aud", &v) ||
			    !aud_contains(v, p->audience)))
		return JWT_BAD_AUDIENCE;
	/* No exp: accepted, as PostgREST does; the issuer chose a token that
	 * does not expire. */
	if (json_object_object_get_ex(pl, "exp", &v)) {
		if (!numeric_date(v, &t))
			return JWT_MALFORMED;
		if (now >= add_sat(t, leeway))
			return JWT_EXPIRED;
		out->has_exp = true;
		out->exp = t;
	}
	if (json_object_object_get_ex(pl, "nbf", &v)) {
		if (!numeric_date(v, &t))
			return JWT_MALFORMED;
		if (now < sub_sat(t, leeway))
			return JWT_NOT_YET_VALID;
	}
	/* Issued in the future: the issuer's clock or the token is wrong.
	 * PostgREST refuses it too. */
	if (json_object_object_get_ex(pl, "iat", &v)) {
		if (!numeric_date(v, &t))
			return JWT_MALFORMED;
		if (now < sub_sat(t, leeway))
			return JWT_NOT_YET_VALID;
	}
	v = resolve_path(pl, p->role_claim ? p->role_claim : JWT_DEFAULT_ROLE_CLAIM);
	if (!v || !json_object_is_type(v, json_type_string))
		return JWT_NO_ROLE;
	role = json_object_get_string(v);
	role_len = (size_t)json_object_get_string_len(v);
	if (role_len == 0 || role_len > JWT_MAX_ROLE || memchr(role, '\0', role_len))
		return JWT_NO_ROLE;
	memcpy(out->role, role, role_len);
	out->role[role_len] = '\0';
	return JWT_OK;
}

/* ---- verification ---------------------------------------------------------- */

int jwt_verify(const struct jwt_key *k, const char *token, size_t len,
	       const struct jwt_policy *p, int64_t now_sec, struct jwt_claims *out)
{
	unsigned char dec[JWT_MAX_TOKEN];
	const char *dot1, *dot2, *seg[3];
	size_t seg_len[3];
	long n;
	unsigned char *hdr_bytes, *pl_bytes, *sig;
	size_t hdr_len, pl_len, sig_len;
	json_object *hdr = NULL, *pl = NULL, *v;
	const struct alg *a;
	struct jwt_policy defaults;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!p) {
		jwt_policy_init(&defaults);
		p = &defaults;
	}
	if (len == 0 || len > JWT_MAX_TOKEN)
		return JWT_MALFORMED;
	dot1 = memchr(token, '.', len);
	if (!dot1)
		return JWT_MALFORMED;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return JWT_MALFORMED; /* two segments (JWS) or five (JWE) */
	seg[0] = token;
	seg_len[0] = (size_t)(dot1 - token);
	seg[1] = dot1 + 1;
	seg_len[1] = (size_t)(dot2 - seg[1]);
	seg[2] = dot2 + 1;
	seg_len[2] = len - (size_t)(seg[2] - token);

	/* Decoded, the three fit in dec: each shrinks by a quarter. */
	hdr_bytes = dec;
	if ((n = jose_b64url_decode(seg[0], seg_len[0], hdr_bytes)) < 0)
		return JWT_MALFORMED;
	hdr_len = (size_t)n;
	pl_bytes = hdr_bytes + hdr_len;
	if ((n = jose_b64url_decode(seg[1], seg_len[1], pl_bytes)) < 0)
		return JWT_MALFORMED;
	pl_len = (size_t)n;
	sig = pl_bytes + pl_len;
	if ((n = jose_b64url_decode(seg[2], seg_len[2], sig)) < 0)
		return JWT_MALFORMED;
	sig_len = (size_t)n;

	hdr = jose_parse_object(hdr_bytes, hdr_len);
	if (!hdr)
		return JWT_MALFORMED;
	if (!json_object_object_get_ex(hdr, "alg", &v) || !(a = accepted_alg(k, v))) {
		rc = JWT_BAD_ALG;
		goto out_free_hdr;
	}
	/* RFC 7515 §4.1.11: we understand no extension, so any critical one
	 * (b64=false of RFC 7797 included) makes the token unusable. An empty
	 * list, which producers must not send, asks for nothing. */
	if (json_object_object_get_ex(hdr, "crit", &v) &&
	    !(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0)) {
		rc = JWT_MALFORMED;
		goto out_free_hdr;
	}
	/* kid, jku, jwk, x5u, x5c are ignored: the key is ours, never the
	 * token's to name. */
	if (k->family == JWT_FAMILY_HS)
		rc = verify_hmac(k, a, token, seg_len[0] + 1 + seg_len[1], sig, sig_len);
	else
		rc = verify_pkey(k, a, token, seg_len[0] + 1 + seg_len[1], sig, sig_len);
	if (rc != JWT_OK)
		goto out_free_hdr;

	pl = jose_parse_object(pl_bytes, pl_len);
	if (!pl) {
		rc = JWT_MALFORMED;
		goto out_free_hdr;
	}
	rc = check_claims(pl, p, now_sec, out);
	if (rc != JWT_OK) {
		json_object_put(pl);
		memset(out, 0, sizeof(*out));
		goto out_free_hdr;
	}
	out->payload = pl;
out_free_hdr:
	json_object_put(hdr);
	return rc;
}

void jwt_claims_clear(struct jwt_claims *c)
{
	json_object_put(c->payload);
	memset(c, 0, sizeof(*c));
}
