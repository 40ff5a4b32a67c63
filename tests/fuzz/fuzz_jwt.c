/*
 * Fuzz target: JWT verification (jwt_verify) and the audience projection
 * (claims_project), with fixed keys: an HMAC secret (HS256/384/512), an
 * RSA-2048 public key (RS256) and a P-256 public key (ES256). The private
 * halves of the RSA and EC keys signed the seed corpus and are not kept.
 *
 * Each input is used twice:
 *  - as a token, against each key under two policies (the defaults, and a
 *    strict one: audience, issuer, a nested role path, no leeway);
 *  - split at its first '\n' into header and payload JSON, which the
 *    harness encodes and signs with the HMAC secret (the alg the header
 *    names, HS256 otherwise): this reaches the claim checks, which a
 *    fuzzer could never reach through a signature it cannot forge.
 *
 * Invariants, beyond "no memory error, no UB, no leak":
 *  - the result is one of enum jwt_result, never JWT_INTERNAL, with a
 *    message and, when not OK, a client code; no libcrypto error is left
 *    queued; on failure the claims hold nothing;
 *  - JWT_OK only for a canonical token (three base64url segments, no
 *    padding) whose HMAC the harness recomputes to the same bytes (HS), or
 *    which the harness also verifies with libcrypto (RS, ES); the role is
 *    1..63 bytes without NUL; exp, nbf, iat, aud and iss hold by the
 *    harness's own reading of the payload (doubles, not jwt.c's integer
 *    rounding);
 *  - a token the harness signed is never JWT_BAD_SIGNATURE;
 *  - the projection is strict JSON, an object whose keys are sorted and
 *    are "role" (the verified role) or declared names, and is the same
 *    text when computed twice.
 */
#include "autoconfig.h"

#include "claims.h"
#include "jwt.h"
#include "sio.h"
#include "fuzz.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define FUZZ_NOW 1800000000LL

static const char hs_secret[] =
	"pgpush-fuzz-secret-0123456789abcdef-0123456789abcdef-0123456789a"; /* 64 bytes */
static const char rsa_pub[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyy7wj3o0nQ0BMwejuDX0\n"
	"zt4O2QMDF3aqxZ7qQ5qVeMK/tiK2rJSFeteTjC1zvdBCWhwyAQdWhj+HC/9luwae\n"
	"TXY4pj6LCgnmZlCSYEHA0UQTTqSv4w3WdOeC08UldszHGKbZxO71oOtXRTyuQMos\n"
	"DyskRMmm7ynt5ZVGT7TYs9wNRRUti01pGRClxeaEoZGQFgqBptnNrSRl70RnYHGZ\n"
	"UzbgDpS+jgXCgyHTFMQeTTt6KkKnLaqKpHKRKoULWpa8xrwbI9wxUCx4KvtjzRBT\n"
	"LsqIOZMHACHDeWhPxkaxfXCBxehbUB+UcYxysxG2HnfIlStTt63/F7MwjARBsdHw\n"
	"FQIDAQAB\n"
	"-----END PUBLIC KEY-----\n";
static const char ec_pub[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExw0NgR4iL2JQzHvQFAi3zSLpRzm5\n"
	"A86ogzVfM3R97XSSllwVXkkETBcDrzuzJvXe7dD14WgYfRK6UBp7PGPv6Q==\n"
	"-----END PUBLIC KEY-----\n";

static struct jwt_key *k_hs, *k_rs, *k_es;
static EVP_PKEY *pk_rs, *pk_es;
static struct jwt_policy pol_default, pol_strict;
static const char *const declared[] = { "tenant", "sub", "aud", "x", "role" };

static EVP_PKEY *read_pub(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static void init(void)
{
	char err[256];

	if (jwt_key_load(hs_secret, 64, &k_hs, err, sizeof(err)) < 0 ||
	    jwt_key_load(rsa_pub, strlen(rsa_pub), &k_rs, err, sizeof(err)) < 0 ||
	    jwt_key_load(ec_pub, strlen(ec_pub), &k_es, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	pk_rs = read_pub(rsa_pub);
	pk_es = read_pub(ec_pub);
	if (!pk_rs || !pk_es)
		abort();
	jwt_policy_init(&pol_default);
	jwt_policy_init(&pol_strict);
	pol_strict.audience = "pgpush";
	pol_strict.issuer = "https://auth.example";
	pol_strict.role_claim = ".app_metadata.role";
	pol_strict.leeway_sec = 0;
}

/* ---- the harness's own base64url ------------------------------------------- */

static int b64v(unsigned char c)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *p = c ? strchr(al, c) : NULL;

	return p ? (int)(p - al) : -1;
}

/* Lenient (ignores spare bits): the canonical check is the re-encoding. */
static long b64d(const char *s, size_t len, unsigned char *out)
{
	unsigned acc = 0;
	int bits = 0;
	long n = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64v((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n;
}

static size_t b64e(const unsigned char *d, size_t n, char *out)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = al[d[i] >> 2];
		out[o++] = al[(d[i] & 3) << 4 | d[i + 1] >> 4];
		out[o++] = al[(d[i + 1] & 15) << 2 | d[i + 2] >> 6];
		out[o++] = al[d[i + 2] & 63];
	}
	if (n - i == 1) {
		out[o++] = al[d[i] >> 2];
		out[o++] = al[(d[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = al[d[i] >> 2];
		out[o++] = al[(d[i] & 3) << 4 | d[i + 1] >> 4];
		out[o++] = al[(d[i + 1] & 15) << 2];
	}
	return o;
}

/* ---- checks on an accepted token ---------------------------------------------- */

static json_object *lenient_parse(const unsigned char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, (const char *)s, (int)len);

	json_tokener_free(tok);
	return o;
}

static const EVP_MD *hs_md(json_object *hdr)
{
	json_object *a;
	const char *s;

	if (!json_object_object_get_ex(hdr, "alg", &a) || !json_object_is_type(a, json_type_string))
		return EVP_sha256();
	s = json_object_get_string(a);
	return strcmp(s, "HS384") == 0 ? EVP_sha384() : strcmp(s, "HS512") == 0 ? EVP_sha512()
									      : EVP_sha256();
}

static bool harness_verify(const struct jwt_key *k, const char *input, size_t input_len,
			   json_object *hdr, const unsigned char *sig, size_t sig_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE], der[80], *dp = der;
	unsigned mac_len;
	EVP_MD_CTX *ctx;
	bool good;

	if (k == k_hs) {
		HMAC(hs_md(hdr), hs_secret, 64, (const unsigned char *)input, input_len, mac, &mac_len);
		return sig_len == mac_len && memcmp(mac, sig, mac_len) == 0;
	}
	if (k == k_es) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		int n;

		if (sig_len != 64)
			return false;
		ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
		n = i2d_ECDSA_SIG(es, &dp);
		ECDSA_SIG_free(es);
		sig = der;
		sig_len = (size_t)n;
	}
	ctx = EVP_MD_CTX_new();
	good = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k == k_rs ? pk_rs : pk_es) == 1 &&
	       EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, input_len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return good;
}

static bool numeric(json_object *o, double *d)
{
	if (!json_object_is_type(o, json_type_int) && !json_object_is_type(o, json_type_double))
		return false;
	*d = json_object_get_double(o);
	return true;
}

static void check_projection(const struct jwt_claims *c)
{
	char *a = NULL, *b = NULL;
	json_object *o, *role;
	const char *prev = NULL;

	FUZZ_CHECK(claims_project(c, declared, sizeof(declared) / sizeof(declared[0]), &a) == 0);
	FUZZ_CHECK(claims_project(c, declared, sizeof(declared) / sizeof(declared[0]), &b) == 0);
	FUZZ_CHECK(a && b && strcmp(a, b) == 0);
	FUZZ_CHECK(sio_json_strict(a, strlen(a)));
	o = json_tokener_parse(a);
	FUZZ_CHECK(json_object_is_type(o, json_type_object));
	FUZZ_CHECK(json_object_object_get_ex(o, "role", &role) &&
		   json_object_is_type(role, json_type_string) &&
		   strcmp(json_object_get_string(role), c->role) == 0);
	json_object_object_foreach(o, key, val) {
		bool known = false;
		json_object *orig;

		for (size_t i = 0; i < sizeof(declared) / sizeof(declared[0]); i++)
			known |= strcmp(key, declared[i]) == 0;
		FUZZ_CHECK(known);
		FUZZ_CHECK(!prev || strcmp(prev, key) < 0);
		prev = key;
		if (strcmp(key, "role") != 0) {
			/* The value, reordered, is the claim's value. */
			FUZZ_CHECK(json_object_object_get_ex(c->payload, key, &orig));
			FUZZ_CHECK(json_object_equal(orig, val) ||
				   json_object_is_type(orig, json_type_double));
		}
	}
	json_object_put(o);
	free(a);
	free(b);
}

static void check_ok(const char *tok, size_t len, const struct jwt_key *k,
		     const struct jwt_policy *p, const struct jwt_claims *c)
{
	unsigned char *dec = fuzz_alloc(len);
	char *re = fuzz_alloc(len + 4);
	const char *dot1 = memchr(tok, '.', len), *dot2;
	size_t hl, pl, sl;
	json_object *hdr, *v;
	double d;

	/* Canonical framing. */
	FUZZ_CHECK(dot1);
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
	FUZZ_CHECK(dot2 && !memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)));
	hl = (size_t)b64d(tok, (size_t)(dot1 - tok), dec);
	FUZZ_CHECK(b64e(dec, hl, re) == (size_t)(dot1 - tok) && memcmp(re, tok, (size_t)(dot1 - tok)) == 0);
	hdr = lenient_parse(dec, hl);
	FUZZ_CHECK(json_object_is_type(hdr, json_type_object));
	pl = (size_t)b64d(dot1 + 1, (size_t)(dot2 - dot1 - 1), dec);
	FUZZ_CHECK(b64e(dec, pl, re) == (size_t)(dot2 - dot1 - 1) &&
		   memcmp(re, dot1 + 1, (size_t)(dot2 - dot1 - 1)) == 0);
	sl = (size_t)b64d(dot2 + 1, len - (size_t)(dot2 + 1 - tok), dec);
	FUZZ_CHECK(b64e(dec, sl, re) == len - (size_t)(dot2 + 1 - tok) &&
		   memcmp(re, dot2 + 1, len - (size_t)(dot2 + 1 - tok)) == 0);
	/* A signature the harness agrees with. */
	FUZZ_CHECK(harness_verify(k, tok, (size_t)(dot2 - tok), hdr, dec, sl));
	json_object_put(hdr);

	/* The claims. */
	FUZZ_CHECK(c->role[0] && strlen(c->role) <= JWT_MAX_ROLE);
	FUZZ_CHECK(json_object_is_type(c->payload, json_type_object));
	if (json_object_object_get_ex(c->payload, "exp", &v)) {
		FUZZ_CHECK(numeric(v, &d) && c->has_exp);
		FUZZ_CHECK((double)FUZZ_NOW < d + (double)p->leeway_sec || d >= 9.2e18);
	} else {
		FUZZ_CHECK(!c->has_exp && c->exp == 0);
	}
	if (json_object_object_get_ex(c->payload, "nbf", &v))
		FUZZ_CHECK(numeric(v, &d) && ((double)FUZZ_NOW >= d - (double)p->leeway_sec || d <= -9.2e18));
	if (json_object_object_get_ex(c->payload, "iat", &v))
		FUZZ_CHECK(numeric(v, &d) && ((double)FUZZ_NOW >= d - (double)p->leeway_sec || d <= -9.2e18));
	if (p->issuer) {
		FUZZ_CHECK(json_object_object_get_ex(c->payload, "iss", &v));
		FUZZ_CHECK(strcmp(json_object_get_string(v), p->issuer) == 0);
	}
	if (p->audience)
		FUZZ_CHECK(json_object_object_get_ex(c->payload, "aud", &v));
	check_projection(c);
	free(re);
	free(dec);
}

static int verify(const struct jwt_key *k, const char *tok, size_t len, const struct jwt_policy *p)
{
	struct jwt_claims c;
	int rc = jwt_verify(k, tok, len, p, FUZZ_NOW, &c);

	FUZZ_CHECK(rc <= JWT_OK && rc > JWT_INTERNAL);
	FUZZ_CHECK(jwt_result_message(rc) != NULL);
	FUZZ_CHECK((rc == JWT_OK) == (jwt_result_code(rc) == NULL));
	FUZZ_CHECK(ERR_peek_error() == 0);
	if (len > JWT_MAX_TOKEN)
		FUZZ_CHECK(rc == JWT_MALFORMED);
	if (rc == JWT_OK) {
		check_ok(tok, len, k, p, &c);
	} else {
		FUZZ_CHECK(c.payload == NULL && c.role[0] == '\0' && !c.has_exp && c.exp == 0);
	}
	jwt_claims_clear(&c);
	FUZZ_CHECK(c.payload == NULL);
	return rc;
}

/* Header and payload JSON from the input, signed here. */
static void run_signed(const char *buf, size_t size)
{
	const char *nl = memchr(buf, '\n', size);
	size_t hl, pl, n;
	char *tok;
	json_object *hdr;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mac_len;
	int rc;

	if (!nl)
		return;
	hl = (size_t)(nl - buf);
	pl = size - hl - 1;
	tok = fuzz_alloc(hl * 4 / 3 + pl * 4 / 3 + 100);
	n = b64e((const unsigned char *)buf, hl, tok);
	tok[n++] = '.';
	n += b64e((const unsigned char *)nl + 1, pl, tok + n);
	hdr = lenient_parse((const unsigned char *)buf, hl);
	HMAC(hs_md(hdr), hs_secret, 64, (const unsigned char *)tok, n, mac, &mac_len);
	json_object_put(hdr);
	tok[n++] = '.';
	n += b64e(mac, mac_len, tok + n);
	{
		char *exact = fuzz_dup((const uint8_t *)tok, n);

		rc = verify(k_hs, exact, n, &pol_default);
		FUZZ_CHECK(rc != JWT_BAD_SIGNATURE);
		rc = verify(k_hs, exact, n, &pol_strict);
		FUZZ_CHECK(rc != JWT_BAD_SIGNATURE);
		/* Against a public key, an HMAC token is never accepted. */
		FUZZ_CHECK(verify(k_rs, exact, n, &pol_default) != JWT_OK);
		free(exact);
	}
	free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);

	if (!k_hs)
		init();
	verify(k_hs, buf, size, &pol_default);
	verify(k_hs, buf, size, &pol_strict);
	verify(k_rs, buf, size, &pol_default);
	verify(k_rs, buf, size, &pol_strict);
	verify(k_es, buf, size, &pol_default);
	verify(k_es, buf, size, &pol_strict);
	run_signed(buf, size);
	free(buf);
	return 0;
}
