/* JWT verification with real tokens minted here with libcrypto: HS256/384/
 * 512, RS256 (a fresh RSA-2048 key), ES256 (a fresh P-256 key). Table-driven. */
#include "autoconfig.h"

#include "claims.h"
#include "jwt.h"
#include "sio.h"
#include "tap.h"

#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define NOW 1800000000LL

/* 64 bytes: HS256, HS384 and HS512 all allowed. */
static const char secret64[] = "pgpush-test-secret-0123456789abcdef-0123456789abcdef-0123456789a";
/* 32 bytes: HS256 only. */
static const char secret32[] = "pgpush-test-secret-0123456789abc";

static EVP_PKEY *rsa_key, *ec_key;
static char *rsa_pub_pem, *ec_pub_pem;
static struct jwt_key *k_hs, *k_hs32, *k_rs, *k_es;

/* ---- minting ------------------------------------------------------------ */

static char *b64url(const unsigned char *d, size_t n)
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

static char *pem_of(EVP_PKEY *k, bool priv)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	if (priv)
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PUBKEY(b, k);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

static size_t sign_pkey(EVP_PKEY *k, bool pss, const char *in, size_t n, unsigned char *sig)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc;
	size_t sl = 1024;

	EVP_DigestSignInit(c, &pc, EVP_sha256(), NULL, k);
	if (pss)
		EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
	if (EVP_DigestSign(c, sig, &sl, (const unsigned char *)in, n) != 1)
		sl = 0;
	EVP_MD_CTX_free(c);
	return sl;
}

/* DER ECDSA-Sig-Value to JWS's R || S. */
static size_t der_to_raw(unsigned char *sig, size_t n)
{
	const unsigned char *p = sig;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
	const BIGNUM *r, *s;

	ECDSA_SIG_get0(es, &r, &s);
	BN_bn2binpad(r, sig, 32);
	BN_bn2binpad(s, sig + 32, 32);
	ECDSA_SIG_free(es);
	return 64;
}

enum sig {
	SIG_HS256, SIG_HS384, SIG_HS512, SIG_RS256, SIG_ES256,
	SIG_EMPTY,          /* "h.p." */
	SIG_TWO_SEGMENTS,   /* "h.p" */
	SIG_RS256_PSS,      /* RSA-PSS padding instead of PKCS#1 v1.5 */
	SIG_ES256_DER,      /* the DER form, not R || S */
	SIG_CONFUSE_RSA,    /* HS256 with the RSA public PEM as the secret */
	SIG_CONFUSE_RSA_TRIM, /* ... the PEM without its final newline */
	SIG_CONFUSE_EC,     /* HS256 with the EC public PEM as the secret */
	SIG_HS256_32,       /* HS256 with the 32-byte secret */
	SIG_HS384_32,       /* HS384 with the 32-byte secret */
};

enum mut {
	M_NONE,
	M_FLIP_HDR, M_FLIP_PL, M_FLIP_SIG,  /* one bit, in the decoded bytes */
	M_PAD,              /* '=' padding on the payload segment */
	M_STD_ALPHABET,     /* '+' for '-' somewhere: base64, not base64url */
	M_NONCANON,         /* unused low bits of the payload's last char set */
	M_LEAD_SPACE,
	M_EXTRA_SEGMENT,
	M_SIG_SHORT,        /* signature one byte short */
};

/* Flips the low bit of the last character of the last string value
 * (just before the final "}): the JSON stays valid. */
static void flip_json(char *j)
{
	char *end = strrchr(j, '}');

	if (end && end - j >= 2 && end[-1] == '"')
		end[-2] ^= 1;
}

static char *mint(const char *hdr, const char *pl, enum sig how, enum mut m)
{
	char *h = strdup(hdr), *p = strdup(pl), *hb, *pb, *sb = NULL, *input, *tok;
	unsigned char sig[1024];
	unsigned sl32 = 0;
	size_t sl = 0, n;

	hb = b64url((unsigned char *)h, strlen(h));
	pb = b64url((unsigned char *)p, strlen(p));
	n = strlen(hb) + strlen(pb) + 2;
	input = malloc(n);
	snprintf(input, n, "%s.%s", hb, pb);
	switch (how) {
	case SIG_HS256:
	case SIG_HS384:
	case SIG_HS512:
		HMAC(how == SIG_HS256 ? EVP_sha256() : how == SIG_HS384 ? EVP_sha384() : EVP_sha512(),
		     secret64, 64, (unsigned char *)input, strlen(input), sig, &sl32);
		sl = sl32;
		break;
	case SIG_HS256_32:
	case SIG_HS384_32:
		HMAC(how == SIG_HS256_32 ? EVP_sha256() : EVP_sha384(), secret32, 32,
		     (unsigned char *)input, strlen(input), sig, &sl32);
		sl = sl32;
		break;
	case SIG_CONFUSE_RSA:
	case SIG_CONFUSE_RSA_TRIM:
	case SIG_CONFUSE_EC: {
		const char *pem = how == SIG_CONFUSE_EC ? ec_pub_pem : rsa_pub_pem;
		size_t plen = strlen(pem) - (how == SIG_CONFUSE_RSA_TRIM);

		HMAC(EVP_sha256(), pem, (int)plen, (unsigned char *)input, strlen(input), sig, &sl32);
		sl = sl32;
		break;
	}
	case SIG_RS256:
	case SIG_RS256_PSS:
		sl = sign_pkey(rsa_key, how == SIG_RS256_PSS, input, strlen(input), sig);
		break;
	case SIG_ES256:
		sl = der_to_raw(sig, sign_pkey(ec_key, false, input, strlen(input), sig));
		break;
	case SIG_ES256_DER:
		sl = sign_pkey(ec_key, false, input, strlen(input), sig);
		break;
	case SIG_EMPTY:
	case SIG_TWO_SEGMENTS:
		break;
	}
	if (m == M_FLIP_HDR) {
		flip_json(h);
		free(hb);
		hb = b64url((unsigned char *)h, strlen(h));
	}
	if (m == M_FLIP_PL) {
		/* Signed over the original, sent with one bit changed. */
		flip_json(p);
		free(pb);
		pb = b64url((unsigned char *)p, strlen(p));
	}
	if (m == M_FLIP_SIG && sl)
		sig[sl / 2] ^= 1;
	if (m == M_SIG_SHORT && sl)
		sl--;
	sb = b64url(sig, sl);
	n = strlen(hb) + strlen(pb) + strlen(sb) + 16;
	tok = malloc(n);
	if (how == SIG_TWO_SEGMENTS)
		snprintf(tok, n, "%s%s.%s", m == M_LEAD_SPACE ? " " : "", hb, pb);
	else
		snprintf(tok, n, "%s%s.%s%s.%s%s", m == M_LEAD_SPACE ? " " : "", hb, pb,
			 m == M_PAD ? "==" : "", sb, m == M_EXTRA_SEGMENT ? ".AAAA" : "");
	if (m == M_STD_ALPHABET || m == M_NONCANON) {
		/* In the payload segment. */
		char *seg = strchr(tok, '.') + 1, *dot = strchr(seg, '.');

		if (m == M_STD_ALPHABET) {
			for (char *c = seg; c < dot; c++)
				if (*c == '-' || *c == '_') {
					*c = *c == '-' ? '+' : '/';
					break;
				}
		} else {
			/* The payload's length is not a multiple of 3 (checked
			 * by the table), so the last character has spare bits. */
			/* Its value is a multiple of 4, so +1 stays in its run of
			 * the alphabet and sets an unused bit. */
			dot[-1]++;
		}
	}
	free(h);
	free(p);
	free(hb);
	free(pb);
	free(sb);
	free(input);
	return tok;
}

/* ---- the table ------------------------------------------------------------ */

#define H_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define H_HS384 "{\"alg\":\"HS384\",\"typ\":\"JWT\"}"
#define H_HS512 "{\"alg\":\"HS512\",\"typ\":\"JWT\"}"
#define H_RS256 "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define H_ES256 "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define H_NONE  "{\"alg\":\"none\",\"typ\":\"JWT\"}"

enum key { K_HS, K_HS32, K_RS, K_ES };
enum pol { P_DEFAULT, P_NO_LEEWAY, P_AUD_ISS, P_NESTED, P_QUOTED, P_BAD_PATH };

static const struct tcase {
	const char *name;
	enum key key;
	const char *hdr;
	const char *pl;
	enum sig sig;
	enum mut mut;
	enum pol pol;
	int want;
	const char *role;      /* on JWT_OK */
} cases[] = {
	/* valid, each algorithm */
	{ "HS256 valid", K_HS, H_HS256, "{\"role\":\"alice\",\"exp\":1800000100}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "alice" },
	{ "HS384 valid", K_HS, H_HS384, "{\"role\":\"alice\",\"exp\":1800000100}", SIG_HS384, M_NONE, P_DEFAULT, JWT_OK, "alice" },
	{ "HS512 valid", K_HS, H_HS512, "{\"role\":\"alice\",\"exp\":1800000100}", SIG_HS512, M_NONE, P_DEFAULT, JWT_OK, "alice" },
	{ "RS256 valid", K_RS, H_RS256, "{\"role\":\"bob\",\"exp\":1800000100}", SIG_RS256, M_NONE, P_DEFAULT, JWT_OK, "bob" },
	{ "ES256 valid", K_ES, H_ES256, "{\"role\":\"carol\",\"exp\":1800000100}", SIG_ES256, M_NONE, P_DEFAULT, JWT_OK, "carol" },
	{ "HS256 with a 32-byte secret", K_HS32, H_HS256, "{\"role\":\"a\"}", SIG_HS256_32, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "no exp: accepted (PostgREST)", K_HS, H_HS256, "{\"role\":\"alice\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "alice" },
	{ "header with kid and jwk: ignored", K_HS, "{\"alg\":\"HS256\",\"kid\":\"x\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "crit [] asks for nothing", K_HS, "{\"alg\":\"HS256\",\"crit\":[]}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "whitespace in the JSON", K_HS, " { \"alg\" : \"HS256\" } ", "\n{\"role\" :\"a\"}\n", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "duplicate claim: the last wins", K_HS, H_HS256, "{\"role\":\"first\",\"role\":\"last\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "last" },
	{ "UTF-8 role", K_HS, H_HS256, "{\"role\":\"caf\xc3\xa9\\u00e9\\ud83d\\ude00\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "caf\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80" },
	/* time */
	{ "expired", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1799999000}", SIG_HS256, M_NONE, P_DEFAULT, JWT_EXPIRED, NULL },
	{ "exp = now - 30: expired at the leeway's end", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1799999970}", SIG_HS256, M_NONE, P_DEFAULT, JWT_EXPIRED, NULL },
	{ "exp = now - 29: within the leeway", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1799999971}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "exp = now - 30.5 (fractional): expired", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1799999969.5}", SIG_HS256, M_NONE, P_DEFAULT, JWT_EXPIRED, NULL },
	{ "exp = now - 29.5 (fractional): valid", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1799999970.5}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "exp = now, no leeway: expired", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1800000000}", SIG_HS256, M_NONE, P_NO_LEEWAY, JWT_EXPIRED, NULL },
	{ "exp = now + 1, no leeway: valid", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1800000001}", SIG_HS256, M_NONE, P_NO_LEEWAY, JWT_OK, "a" },
	{ "exp 1e300: far future", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":1e300}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "exp -1e300: long past", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":-1e300}", SIG_HS256, M_NONE, P_DEFAULT, JWT_EXPIRED, NULL },
	{ "exp beyond 64 bits: refused, json-c would clamp it", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":99999999999999999999}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "exp a string", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":\"1800000100\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "exp null", K_HS, H_HS256, "{\"role\":\"a\",\"exp\":null}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "not yet valid", K_HS, H_HS256, "{\"role\":\"a\",\"nbf\":1800000031}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NOT_YET_VALID, NULL },
	{ "nbf = now + 30: within the leeway", K_HS, H_HS256, "{\"role\":\"a\",\"nbf\":1800000030}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "nbf = now + 30.5: not yet", K_HS, H_HS256, "{\"role\":\"a\",\"nbf\":1800000030.5}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NOT_YET_VALID, NULL },
	{ "nbf = now + 1, no leeway: not yet", K_HS, H_HS256, "{\"role\":\"a\",\"nbf\":1800000001}", SIG_HS256, M_NONE, P_NO_LEEWAY, JWT_NOT_YET_VALID, NULL },
	{ "nbf = now, no leeway: valid", K_HS, H_HS256, "{\"role\":\"a\",\"nbf\":1800000000}", SIG_HS256, M_NONE, P_NO_LEEWAY, JWT_OK, "a" },
	{ "iat = now + 31: issued in the future", K_HS, H_HS256, "{\"role\":\"a\",\"iat\":1800000031}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NOT_YET_VALID, NULL },
	{ "iat = now + 30: within the leeway", K_HS, H_HS256, "{\"role\":\"a\",\"iat\":1800000030}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
	{ "iat a string", K_HS, H_HS256, "{\"role\":\"a\",\"iat\":\"now\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "nbf a boolean", K_HS, H_HS256, "{\"role\":\"a\",\"nbf\":true}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	/* alg none */
	{ "alg none, empty signature", K_HS, H_NONE, "{\"role\":\"a\"}", SIG_EMPTY, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg none, with a signature", K_HS, H_NONE, "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg none, two segments", K_HS, H_NONE, "{\"role\":\"a\"}", SIG_TWO_SEGMENTS, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "alg none against RSA", K_RS, H_NONE, "{\"role\":\"a\"}", SIG_EMPTY, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg None", K_HS, "{\"alg\":\"None\"}", "{\"role\":\"a\"}", SIG_EMPTY, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg hs256 (case)", K_HS, "{\"alg\":\"hs256\"}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg missing", K_HS, "{\"typ\":\"JWT\"}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg a number", K_HS, "{\"alg\":256}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "alg [\"HS256\"]", K_HS, "{\"alg\":[\"HS256\"]}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	/* algorithm confusion and the key's family */
	{ "confusion: HS256 keyed with the RSA public PEM", K_RS, H_HS256, "{\"role\":\"postgres\"}", SIG_CONFUSE_RSA, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "confusion: ... the PEM without its newline", K_RS, H_HS256, "{\"role\":\"postgres\"}", SIG_CONFUSE_RSA_TRIM, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "confusion: HS256 keyed with the EC public PEM", K_ES, H_HS256, "{\"role\":\"postgres\"}", SIG_CONFUSE_EC, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "RS256 token, HMAC key", K_HS, H_RS256, "{\"role\":\"a\"}", SIG_RS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "ES256 token, RSA key", K_RS, H_ES256, "{\"role\":\"a\"}", SIG_ES256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "RS256 token, EC key", K_ES, H_RS256, "{\"role\":\"a\"}", SIG_RS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "RS384 token, RSA key", K_RS, "{\"alg\":\"RS384\"}", "{\"role\":\"a\"}", SIG_RS256, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "PS256 token, RSA key", K_RS, "{\"alg\":\"PS256\"}", "{\"role\":\"a\"}", SIG_RS256_PSS, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	{ "HS384 with a 32-byte secret (RFC 7518 3.2)", K_HS32, H_HS384, "{\"role\":\"a\"}", SIG_HS384_32, M_NONE, P_DEFAULT, JWT_BAD_ALG, NULL },
	/* signatures */
	{ "HS256, one bit flipped in the header", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_FLIP_HDR, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "HS256, one bit flipped in the payload", K_HS, H_HS256, "{\"role\":\"admin\"}", SIG_HS256, M_FLIP_PL, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "HS256, one bit flipped in the signature", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_FLIP_SIG, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "HS256, signature one byte short", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_SIG_SHORT, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "HS256, empty signature", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_EMPTY, M_NONE, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "HS256 signed with another secret", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256_32, M_NONE, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "RS256, one bit flipped in the header", K_RS, H_RS256, "{\"role\":\"a\"}", SIG_RS256, M_FLIP_HDR, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "RS256, one bit flipped in the payload", K_RS, H_RS256, "{\"role\":\"admin\"}", SIG_RS256, M_FLIP_PL, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "RS256, one bit flipped in the signature", K_RS, H_RS256, "{\"role\":\"a\"}", SIG_RS256, M_FLIP_SIG, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "RS256, signature one byte short", K_RS, H_RS256, "{\"role\":\"a\"}", SIG_RS256, M_SIG_SHORT, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "RS256 signed with PSS padding", K_RS, H_RS256, "{\"role\":\"a\"}", SIG_RS256_PSS, M_NONE, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "ES256, one bit flipped in the header", K_ES, H_ES256, "{\"role\":\"a\"}", SIG_ES256, M_FLIP_HDR, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "ES256, one bit flipped in the payload", K_ES, H_ES256, "{\"role\":\"admin\"}", SIG_ES256, M_FLIP_PL, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "ES256, one bit flipped in the signature", K_ES, H_ES256, "{\"role\":\"a\"}", SIG_ES256, M_FLIP_SIG, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "ES256, signature 63 bytes", K_ES, H_ES256, "{\"role\":\"a\"}", SIG_ES256, M_SIG_SHORT, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "ES256, DER signature instead of R||S", K_ES, H_ES256, "{\"role\":\"a\"}", SIG_ES256_DER, M_NONE, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	{ "ES256, empty signature", K_ES, H_ES256, "{\"role\":\"a\"}", SIG_EMPTY, M_NONE, P_DEFAULT, JWT_BAD_SIGNATURE, NULL },
	/* framing */
	{ "padding on a segment", K_HS, H_HS256, "{\"role\":\"ab\"}", SIG_HS256, M_PAD, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "base64 alphabet, not base64url", K_HS, "{\"alg\":\"HS256\",\"x\":\"~~~>>>???\"}", "{\"role\":\"a\",\"x\":\"~~~>>>???\"}", SIG_HS256, M_STD_ALPHABET, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "non-canonical trailing bits", K_HS, H_HS256, "{\"role\":\"ab\"}", SIG_HS256, M_NONCANON, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "leading space", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_LEAD_SPACE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "four segments", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_EXTRA_SEGMENT, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "two segments", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_TWO_SEGMENTS, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "header an array", K_HS, "[\"HS256\"]", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "header not JSON", K_HS, "{alg:HS256}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "crit [\"exp\"]", K_HS, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "crit b64 (RFC 7797)", K_HS, "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "crit a string", K_HS, "{\"alg\":\"HS256\",\"crit\":\"x\"}", "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload an array (signed)", K_HS, H_HS256, "[{\"role\":\"a\"}]", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload a string (signed)", K_HS, H_HS256, "\"role\"", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload with NaN", K_HS, H_HS256, "{\"role\":\"a\",\"x\":NaN}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload with trailing garbage", K_HS, H_HS256, "{\"role\":\"a\"}x", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload with a lone surrogate", K_HS, H_HS256, "{\"role\":\"a\\ud800\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload with \\u0000 in a key", K_HS, H_HS256, "{\"role\":\"a\",\"tenant\\u0000x\":1}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload in Latin-1", K_HS, H_HS256, "{\"role\":\"caf\xe9\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	{ "payload nested 40 deep", K_HS, H_HS256, "{\"role\":\"a\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", SIG_HS256, M_NONE, P_DEFAULT, JWT_MALFORMED, NULL },
	/* role */
	{ "no role claim", K_HS, H_HS256, "{\"sub\":\"u1\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NO_ROLE, NULL },
	{ "role a number", K_HS, H_HS256, "{\"role\":42}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NO_ROLE, NULL },
	{ "role null", K_HS, H_HS256, "{\"role\":null}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NO_ROLE, NULL },
	{ "role an array", K_HS, H_HS256, "{\"role\":[\"a\"]}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NO_ROLE, NULL },
	{ "role empty", K_HS, H_HS256, "{\"role\":\"\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NO_ROLE, NULL },
	{ "role 63 bytes", K_HS, H_HS256, "{\"role\":\"r12345678901234567890123456789012345678901234567890123456789012\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "r12345678901234567890123456789012345678901234567890123456789012" },
	{ "role 64 bytes", K_HS, H_HS256, "{\"role\":\"r123456789012345678901234567890123456789012345678901234567890123\"}", SIG_HS256, M_NONE, P_DEFAULT, JWT_NO_ROLE, NULL },
	{ "nested role path", K_HS, H_HS256, "{\"role\":\"authenticated\",\"app_metadata\":{\"role\":\"manager\"}}", SIG_HS256, M_NONE, P_NESTED, JWT_OK, "manager" },
	{ "nested role path, top-level role only", K_HS, H_HS256, "{\"role\":\"manager\"}", SIG_HS256, M_NONE, P_NESTED, JWT_NO_ROLE, NULL },
	{ "nested role path through a string", K_HS, H_HS256, "{\"app_metadata\":\"role\"}", SIG_HS256, M_NONE, P_NESTED, JWT_NO_ROLE, NULL },
	{ "quoted role path key", K_HS, H_HS256, "{\"https://pgpush.dev/claims\":{\"db.role\":\"viewer\"}}", SIG_HS256, M_NONE, P_QUOTED, JWT_OK, "viewer" },
	{ "malformed role path", K_HS, H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_NONE, P_BAD_PATH, JWT_NO_ROLE, NULL },
	/* aud and iss */
	{ "aud and iss match", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":\"pgpush\",\"iss\":\"https://auth.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_OK, "a" },
	{ "aud array contains it", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":[\"other\",\"pgpush\"],\"iss\":\"https://auth.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_OK, "a" },
	{ "aud mismatch", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":\"other\",\"iss\":\"https://auth.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_BAD_AUDIENCE, NULL },
	{ "aud array without it", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":[\"other\",1],\"iss\":\"https://auth.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_BAD_AUDIENCE, NULL },
	{ "aud prefix only", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":\"pgpushx\",\"iss\":\"https://auth.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_BAD_AUDIENCE, NULL },
	{ "aud missing, audience configured", K_HS, H_HS256, "{\"role\":\"a\",\"iss\":\"https://auth.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_BAD_AUDIENCE, NULL },
	{ "iss mismatch", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":\"pgpush\",\"iss\":\"https://evil.example\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_BAD_ISSUER, NULL },
	{ "iss missing, issuer configured", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":\"pgpush\"}", SIG_HS256, M_NONE, P_AUD_ISS, JWT_BAD_ISSUER, NULL },
	{ "aud and iss not configured: not checked", K_HS, H_HS256, "{\"role\":\"a\",\"aud\":\"other\",\"iss\":5}", SIG_HS256, M_NONE, P_DEFAULT, JWT_OK, "a" },
};

static void policy_for(enum pol which, struct jwt_policy *p)
{
	jwt_policy_init(p);
	switch (which) {
	case P_DEFAULT: break;
	case P_NO_LEEWAY: p->leeway_sec = 0; break;
	case P_AUD_ISS: p->audience = "pgpush"; p->issuer = "https://auth.example"; break;
	case P_NESTED: p->role_claim = ".app_metadata.role"; break;
	case P_QUOTED: p->role_claim = ".\"https://pgpush.dev/claims\".\"db.role\""; break;
	case P_BAD_PATH: p->role_claim = ".role["; break;
	}
}

static const struct jwt_key *key_for(enum key k)
{
	return k == K_HS ? k_hs : k == K_HS32 ? k_hs32 : k == K_RS ? k_rs : k_es;
}

static void run_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		char *tok = mint(c->hdr, c->pl, c->sig, c->mut);
		struct jwt_policy pol;
		struct jwt_claims cl;
		int rc;

		policy_for(c->pol, &pol);
		if (c->mut == M_NONCANON && strlen(c->pl) % 3 == 0)
			ok(0, "%s: table error, payload length is a multiple of 3", c->name);
		rc = jwt_verify(key_for(c->key), tok, strlen(tok), &pol, NOW, &cl);
		if (!ok(rc == c->want, "%s: %s", c->name, jwt_result_message(c->want)))
			printf("#   got %d (%s)\n#   token %s\n", rc, jwt_result_message(rc), tok);
		if (rc == JWT_OK) {
			if (c->role)
				is_str(cl.role, c->role, "  role of '%s'", c->name);
			ok(json_object_is_type(cl.payload, json_type_object), "  payload of '%s'", c->name);
		} else {
			ok(cl.payload == NULL && cl.role[0] == '\0' && !cl.has_exp,
			   "  nothing to clear after '%s'", c->name);
		}
		jwt_claims_clear(&cl);
		free(tok);
	}
}

/* ---- more verification -------------------------------------------------------- */

static void test_garbage(void)
{
	static const char *const garbage[] = {
		"", "garbage", ".", "..", "...", "a.b.c", "eyJ.eyJ.", "e30.e30.",
		"e30.e30.AAAA", "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9..",
		"\xff\xfe.\x00.x", "a.b.c.d.e",
	};
	struct jwt_claims cl;

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		int rc = jwt_verify(k_hs, garbage[i], strlen(garbage[i]), NULL, NOW, &cl);

		ok(rc != JWT_OK && strcmp(jwt_result_code(rc), "token_invalid") == 0,
		   "garbage %zu refused as token_invalid (%s)", i, jwt_result_message(rc));
	}
	{
		/* JWT_BAD_ALG for e30.e30.: {} has no alg. */
		int rc = jwt_verify(k_hs, "e30.e30.", 8, NULL, NOW, &cl);

		is_int(rc, JWT_BAD_ALG, "header {} has no alg");
	}
}

/* A token as near JWT_MAX_TOKEN as the filler allows is accepted; one
 * byte over the cap, whatever it holds, is not. */
static void test_size(void)
{
	char *pl = malloc(JWT_MAX_TOKEN + 64), *tok = NULL;
	struct jwt_claims cl;
	size_t best = 0;
	int rc;

	for (size_t fill = 7000; fill > 5000; fill--) {
		snprintf(pl, JWT_MAX_TOKEN + 64, "{\"role\":\"a\",\"f\":\"%0*d\"}", (int)fill, 0);
		free(tok);
		tok = mint(H_HS256, pl, SIG_HS256, M_NONE);
		if (strlen(tok) <= JWT_MAX_TOKEN) {
			best = strlen(tok);
			break;
		}
	}
	ok(best > JWT_MAX_TOKEN - 4, "a token of %zu bytes (cap %d) was minted", best, JWT_MAX_TOKEN);
	rc = jwt_verify(k_hs, tok, strlen(tok), NULL, NOW, &cl);
	is_int(rc, JWT_OK, "a token of %zu bytes verifies", best);
	jwt_claims_clear(&cl);
	free(tok);
	for (size_t fill = 5000; fill < 7000; fill++) {
		snprintf(pl, JWT_MAX_TOKEN + 64, "{\"role\":\"a\",\"f\":\"%0*d\"}", (int)fill, 0);
		tok = mint(H_HS256, pl, SIG_HS256, M_NONE);
		if (strlen(tok) > JWT_MAX_TOKEN)
			break;
		free(tok);
	}
	rc = jwt_verify(k_hs, tok, strlen(tok), NULL, NOW, &cl);
	is_int(rc, JWT_MALFORMED, "a validly signed token of %zu bytes is over the cap", strlen(tok));
	free(tok);
	free(pl);
}

static void test_exp_out(void)
{
	char *tok = mint(H_HS256, "{\"role\":\"a\",\"exp\":1800000100.25}", SIG_HS256, M_NONE);
	struct jwt_claims cl;

	is_int(jwt_verify(k_hs, tok, strlen(tok), NULL, NOW, &cl), JWT_OK, "fractional exp verifies");
	ok(cl.has_exp && cl.exp == 1800000101LL, "exp rounded up: %lld", (long long)cl.exp);
	jwt_claims_clear(&cl);
	jwt_claims_clear(&cl);
	ok(cl.payload == NULL, "clearing twice is harmless");
	free(tok);
	tok = mint(H_HS256, "{\"role\":\"a\"}", SIG_HS256, M_NONE);
	is_int(jwt_verify(k_hs, tok, strlen(tok), NULL, NOW, &cl), JWT_OK, "no exp verifies");
	ok(!cl.has_exp && cl.exp == 0, "no exp: has_exp false, exp 0");
	jwt_claims_clear(&cl);
	free(tok);
	/* Expiry moves with now: the same token, later. */
	tok = mint(H_HS256, "{\"role\":\"a\",\"exp\":1800000100}", SIG_HS256, M_NONE);
	is_int(jwt_verify(k_hs, tok, strlen(tok), NULL, 1800000129, &cl), JWT_OK, "exp + 29 s: valid");
	jwt_claims_clear(&cl);
	is_int(jwt_verify(k_hs, tok, strlen(tok), NULL, 1800000130, &cl), JWT_EXPIRED, "exp + 30 s: expired");
	free(tok);
}

static void test_codes(void)
{
	ok(jwt_result_code(JWT_OK) == NULL, "JWT_OK has no error code");
	is_str(jwt_result_code(JWT_MALFORMED), "token_invalid", "malformed -> token_invalid");
	is_str(jwt_result_code(JWT_BAD_ALG), "token_invalid", "bad alg -> token_invalid");
	is_str(jwt_result_code(JWT_BAD_SIGNATURE), "token_invalid", "bad signature -> token_invalid");
	is_str(jwt_result_code(JWT_BAD_AUDIENCE), "token_invalid", "bad audience -> token_invalid");
	is_str(jwt_result_code(JWT_BAD_ISSUER), "token_invalid", "bad issuer -> token_invalid");
	is_str(jwt_result_code(JWT_INTERNAL), "token_invalid", "internal -> token_invalid");
	is_str(jwt_result_code(JWT_EXPIRED), "token_expired", "expired -> token_expired");
	is_str(jwt_result_code(JWT_NOT_YET_VALID), "token_expired", "not yet valid -> token_expired");
	is_str(jwt_result_code(JWT_NO_ROLE), "role_invalid", "no role -> role_invalid");
	for (int r = JWT_INTERNAL - 1; r <= JWT_OK; r++)
		ok(jwt_result_message(r) != NULL, "message for %d: %s", r, jwt_result_message(r));
}

static void test_role_paths(void)
{
	static const struct { const char *path; bool valid; } paths[] = {
		{ "role", true }, { ".role", true }, { ".app_metadata.role", true },
		{ ".\"https://x.io/role\"", true }, { ".a.\"b.c\".d", true },
		{ "", false }, { ".", false }, { "..role", false }, { ".role.", false },
		{ ".roles[0]", false }, { ".\"unterminated", false }, { ".\"\"", false },
		{ ".\"a\"b", false },
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		ok(jwt_role_path_valid(paths[i].path) == paths[i].valid, "role path '%s' %s",
		   paths[i].path, paths[i].valid ? "valid" : "invalid");
	ok(!jwt_role_path_valid(NULL), "NULL role path invalid");
}

/* ---- keys ----------------------------------------------------------------------- */

static char *pem_type_specific(EVP_PKEY *k)
{
	OSSL_ENCODER_CTX *e = OSSL_ENCODER_CTX_new_for_pkey(k, EVP_PKEY_PUBLIC_KEY, "PEM",
							     "type-specific", NULL);
	unsigned char *data = NULL;
	size_t len = 0;
	char *out;

	if (!e || !OSSL_ENCODER_to_data(e, &data, &len)) {
		OSSL_ENCODER_CTX_free(e);
		return NULL;
	}
	OSSL_ENCODER_CTX_free(e);
	out = malloc(len + 1);
	memcpy(out, data, len);
	out[len] = '\0';
	OPENSSL_free(data);
	return out;
}

static int load(const char *data, size_t len, struct jwt_key **k, char *err, size_t errlen)
{
	int rc = jwt_key_load(data, len, k, err, errlen);

	if (rc < 0)
		printf("#   refused: %s\n", err);
	return rc;
}

static void test_keys(void)
{
	char err[256], buf[128], *pem;
	struct jwt_key *k;
	EVP_PKEY *other;

	/* HMAC secrets */
	ok(load("0123456789abcdef0123456789abcde", 31, &k, err, sizeof(err)) < 0 && !k,
	   "a 31-byte HMAC secret is refused");
	ok(strstr(err, "31 bytes") && strstr(err, "RFC 7518"), "  ... saying why: %s", err);
	ok(load("0123456789abcdef0123456789abcde\n", 32, &k, err, sizeof(err)) < 0,
	   "31 bytes and a newline are refused");
	ok(load("", 0, &k, err, sizeof(err)) < 0, "an empty key file is refused");
	ok(load(secret32, 32, &k, err, sizeof(err)) == 0 && jwt_key_family(k) == JWT_FAMILY_HS,
	   "a 32-byte secret is an HS key");
	jwt_key_free(k);
	snprintf(buf, sizeof(buf), "%s\r\n", secret32);
	if (ok(load(buf, strlen(buf), &k, err, sizeof(err)) == 0, "a secret with CRLF loads")) {
		/* Trimmed: a token signed with the 32 bytes verifies. */
		char *tok = mint(H_HS256, "{\"role\":\"a\"}", SIG_HS256_32, M_NONE);
		struct jwt_claims cl;

		is_int(jwt_verify(k, tok, strlen(tok), NULL, NOW, &cl), JWT_OK,
		       "  ... and its line ending is not part of the secret");
		jwt_claims_clear(&cl);
		free(tok);
	}
	jwt_key_free(k);
	ok(load("{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"}", 58, &k, err,
		sizeof(err)) < 0 && strstr(err, "JWK"), "a JWK is refused");
	jwt_key_free(NULL);
	ok(1, "jwt_key_free(NULL) is a no-op");
	{
		char *big = calloc(1, JWT_MAX_KEY_FILE + 1);

		memset(big, 'x', JWT_MAX_KEY_FILE + 1);
		ok(load(big, JWT_MAX_KEY_FILE + 1, &k, err, sizeof(err)) < 0, "an oversize key file is refused");
		free(big);
	}

	/* PEM public keys */
	ok(jwt_key_family(k_rs) == JWT_FAMILY_RS, "the RSA public key is an RS key");
	ok(jwt_key_family(k_es) == JWT_FAMILY_ES, "the EC P-256 public key is an ES key");
	snprintf(err, sizeof(err), "x");
	{
		size_t n = strlen(rsa_pub_pem) + 3;
		char *spaced = malloc(n);

		snprintf(spaced, n, "\n %s", rsa_pub_pem);
		ok(load(spaced, strlen(spaced), &k, err, sizeof(err)) == 0 &&
		   jwt_key_family(k) == JWT_FAMILY_RS, "a PEM after blank space loads");
		jwt_key_free(k);
		free(spaced);
	}
	pem = pem_type_specific(rsa_key);
	if (pem && strstr(pem, "BEGIN RSA PUBLIC KEY")) {
		ok(load(pem, strlen(pem), &k, err, sizeof(err)) == 0 && jwt_key_family(k) == JWT_FAMILY_RS,
		   "a PKCS#1 RSA PUBLIC KEY loads");
		jwt_key_free(k);
	} else {
		ok(1, "# SKIP no PKCS#1 encoder");
	}
	free(pem);
	pem = pem_of(rsa_key, true);
	ok(load(pem, strlen(pem), &k, err, sizeof(err)) < 0 && strstr(err, "private key") && !k,
	   "an RSA private key is refused");
	free(pem);
	pem = pem_of(ec_key, true);
	ok(load(pem, strlen(pem), &k, err, sizeof(err)) < 0 && strstr(err, "private key"),
	   "an EC private key is refused");
	free(pem);
	{
		static const char cert[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

		ok(load(cert, strlen(cert), &k, err, sizeof(err)) < 0 && strstr(err, "certificate"),
		   "a certificate is refused");
	}
	{
		static const char bad[] = "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n";

		ok(load(bad, strlen(bad), &k, err, sizeof(err)) < 0 && strstr(err, "does not parse"),
		   "a PEM that does not parse is refused, not taken as a secret");
		ok(ERR_peek_error() == 0, "  ... leaving no libcrypto error queued");
	}
	{
		size_t n = 2 * strlen(rsa_pub_pem) + 1;
		char *two = malloc(n);

		snprintf(two, n, "%s%s", rsa_pub_pem, ec_pub_pem);
		ok(load(two, strlen(two), &k, err, sizeof(err)) < 0 && strstr(err, "more than one"),
		   "two PEM blocks are refused");
		snprintf(two, n, "secret: %s", rsa_pub_pem);
		ok(load(two, strlen(two), &k, err, sizeof(err)) < 0 && strstr(err, "PEM"),
		   "text then a PEM is refused, not taken as a secret");
		free(two);
	}
	other = EVP_RSA_gen(1024);
	pem = pem_of(other, false);
	ok(load(pem, strlen(pem), &k, err, sizeof(err)) < 0 && strstr(err, "1024"),
	   "an RSA-1024 key is refused");
	free(pem);
	EVP_PKEY_free(other);
	other = EVP_EC_gen("P-384");
	pem = pem_of(other, false);
	ok(load(pem, strlen(pem), &k, err, sizeof(err)) < 0 && strstr(err, "P-256"),
	   "an EC P-384 key is refused");
	free(pem);
	EVP_PKEY_free(other);
	other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	pem = pem_of(other, false);
	ok(load(pem, strlen(pem), &k, err, sizeof(err)) < 0 && strstr(err, "ED25519"),
	   "an Ed25519 key is refused");
	free(pem);
	EVP_PKEY_free(other);
	ok(load(rsa_pub_pem, strlen(rsa_pub_pem), &k, NULL, 0) == 0, "errlen 0 is allowed");
	jwt_key_free(k);
}

/* ---- projection ------------------------------------------------------------------ */

static char *project(const struct jwt_key *key, const char *pl, const struct jwt_policy *pol,
		     const char *const *declared, size_t n)
{
	char *tok = mint(key == k_rs ? H_RS256 : H_HS256, pl, key == k_rs ? SIG_RS256 : SIG_HS256,
			 M_NONE);
	struct jwt_claims cl;
	char *json = NULL;

	if (jwt_verify(key, tok, strlen(tok), pol, NOW, &cl) != JWT_OK) {
		printf("#   does not verify: %s\n", pl);
	} else {
		if (claims_project(&cl, declared, n, &json) != 0)
			json = NULL;
		jwt_claims_clear(&cl);
	}
	free(tok);
	return json;
}

static bool valid_json_object(const char *s)
{
	json_object *o;
	bool valid;

	if (!s || !sio_json_strict(s, strlen(s)))
		return false;
	o = json_tokener_parse(s);
	valid = json_object_is_type(o, json_type_object);
	json_object_put(o);
	return valid;
}

static void test_projection(void)
{
	static const char *const decl[] = { "tenant", "store" };
	struct jwt_policy nested;
	char *a, *b, *c, *d;

	a = project(k_hs, "{\"role\":\"viewer\",\"sub\":\"u1\",\"iat\":1799999000,\"exp\":1800003600,"
		    "\"tenant\":\"t1\",\"store\":7,\"email\":\"a@x\"}", NULL, decl, 2);
	b = project(k_rs, "{\"exp\":1800007200,\"store\":7,\"iat\":1799999999,\"tenant\":\"t1\","
		    "\"role\":\"viewer\",\"sub\":\"u2\",\"email\":\"b@x\"}", NULL, decl, 2);
	c = project(k_hs, "{\"role\":\"viewer\",\"sub\":\"u1\",\"tenant\":\"t2\",\"store\":7}", NULL, decl, 2);
	d = project(k_hs, "{\"role\":\"manager\",\"sub\":\"u1\",\"tenant\":\"t1\",\"store\":7}", NULL, decl, 2);
	is_str(a, "{\"role\":\"viewer\",\"store\":7,\"tenant\":\"t1\"}", "projection: role and declared claims, sorted");
	ok(a && b && strcmp(a, b) == 0, "tokens differing in sub, iat, exp, order and undeclared claims project alike");
	ok(a && c && strcmp(a, c) != 0, "a different declared claim, a different projection");
	ok(a && d && strcmp(a, d) != 0, "a different role, a different projection");
	ok(a && !strstr(a, "sub") && !strstr(a, "email") && !strstr(a, "exp"), "undeclared claims never appear");
	ok(valid_json_object(a), "projection is strict JSON");
	free(a);
	free(b);
	free(c);
	free(d);

	a = project(k_hs, "{\"role\":\"v\",\"sub\":\"u1\"}", NULL, decl, 2);
	is_str(a, "{\"role\":\"v\"}", "declared claims absent from the token: only the role");
	free(a);
	a = project(k_hs, "{\"role\":\"v\",\"sub\":\"u1\"}", NULL, NULL, 0);
	is_str(a, "{\"role\":\"v\"}", "nothing declared: only the role");
	free(a);
	{
		static const char *const d2[] = { "zeta", "alpha", "role", "zeta", "sub" };

		a = project(k_hs, "{\"role\":\"v\",\"zeta\":{\"b\":1,\"a\":[{\"d\":true,\"c\":null}]},"
			    "\"alpha\":[3,\"x\",-1.50e3],\"sub\":\"u9\"}", NULL, d2, 5);
		is_str(a, "{\"alpha\":[3,\"x\",-1.50e3],\"role\":\"v\",\"sub\":\"u9\","
		       "\"zeta\":{\"a\":[{\"c\":null,\"d\":true}],\"b\":1}}",
		       "keys sorted at every depth, numbers as written, duplicates once, a declared sub appears");
		ok(valid_json_object(a), "  ... strict JSON");
		free(a);
	}
	{
		static const char *const d3[] = { "tenant" };

		a = project(k_hs, "{\"role\":\"v\",\"tenant\":\"a\\\"b\\\\c\\n\\u0001\\u00e9/\\u2028\"}", NULL, d3, 1);
		is_str(a, "{\"role\":\"v\",\"tenant\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\xe2\x80\xa8\"}",
		       "strings escaped canonically");
		ok(valid_json_object(a), "  ... strict JSON");
		b = project(k_hs, "{\"tenant\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\/\xe2\x80\xa8\",\"role\":\"v\"}", NULL, d3, 1);
		ok(a && b && strcmp(a, b) == 0, "equal strings spelled differently project alike");
		free(a);
		free(b);
		a = project(k_hs, "{\"role\":\"v\",\"tenant\":18446744073709551614}", NULL, d3, 1);
		is_str(a, "{\"role\":\"v\",\"tenant\":18446744073709551614}", "a uint64 claim is exact");
		free(a);
		a = project(k_hs, "{\"role\":\"v\",\"tenant\":-9223372036854775807}", NULL, d3, 1);
		is_str(a, "{\"role\":\"v\",\"tenant\":-9223372036854775807}", "a negative int64 claim is exact");
		free(a);
	}
	{
		static const char *const d4[] = { "app_metadata", "role" };

		jwt_policy_init(&nested);
		nested.role_claim = ".app_metadata.role";
		a = project(k_hs, "{\"role\":\"authenticated\",\"app_metadata\":{\"role\":\"manager\",\"x\":1}}",
			    &nested, d4, 2);
		is_str(a, "{\"app_metadata\":{\"role\":\"manager\",\"x\":1},\"role\":\"manager\"}",
		       "nested role path: \"role\" is the verified role");
		free(a);
	}
}

int main(void)
{
	char err[256];

	rsa_key = EVP_RSA_gen(2048);
	ec_key = EVP_EC_gen("P-256");
	if (!ok(rsa_key && ec_key, "test keys generated"))
		return done_testing();
	rsa_pub_pem = pem_of(rsa_key, false);
	ec_pub_pem = pem_of(ec_key, false);
	if (!ok(load(secret64, 64, &k_hs, err, sizeof(err)) == 0 &&
		load(secret32, 32, &k_hs32, err, sizeof(err)) == 0 &&
		load(rsa_pub_pem, strlen(rsa_pub_pem), &k_rs, err, sizeof(err)) == 0 &&
		load(ec_pub_pem, strlen(ec_pub_pem), &k_es, err, sizeof(err)) == 0,
		"keys load"))
		return done_testing();

	run_table();
	test_garbage();
	test_size();
	test_exp_out();
	test_codes();
	test_role_paths();
	test_keys();
	test_projection();

	jwt_key_free(k_hs);
	jwt_key_free(k_hs32);
	jwt_key_free(k_rs);
	jwt_key_free(k_es);
	free(rsa_pub_pem);
	free(ec_pub_pem);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	return done_testing();
}
