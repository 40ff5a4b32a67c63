/*
 * jwt: JSON Web Token verification (RFC 7519, JWS compact form RFC 7515),
 * sans-I/O. The caller reads the --jwt-secret-file and hands its bytes to
 * jwt_key_load; it passes each token and the current time to jwt_verify.
 * Nothing here logs, reads files, or looks at the clock.
 *
 * The key decides the one algorithm family accepted, never the token:
 *   HMAC secret (>= 32 bytes)        HS256, HS384 (secret >= 48 bytes),
 *                                    HS512 (secret >= 64 bytes)
 *   PEM RSA public key (>= 2048 bits) RS256
 *   PEM EC P-256 public key          ES256
 * "none" is always refused. Signatures are checked with libcrypto (EVP);
 * JSON is parsed with json-c, as strictly as client packets (sio).
 *
 * The token's encodings (base64url, strict JSON) are jose's; the audience
 * projection of verified claims is claims_project (claims.h).
 *
 * Owns: struct jwt_key (jwt_key_free), the payload held by a struct
 * jwt_claims (jwt_claims_clear). Calls nothing back.
 */
#ifndef PGPUSH_JWT_H
#define PGPUSH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define JWT_MAX_TOKEN 8192         /* bytes of the compact form; longer is malformed */
#define JWT_MAX_KEY_FILE 65536     /* the largest key file jwt_key_load accepts */
#define JWT_MIN_HMAC_SECRET 32     /* RFC 7518 §3.2: at least the hash size of HS256 */
#define JWT_MAX_ROLE 63            /* NAMEDATALEN - 1 */
#define JWT_DEFAULT_LEEWAY 30      /* seconds of clock skew allowed on exp and nbf */
#define JWT_DEFAULT_ROLE_CLAIM "role"

/* What jwt_verify answers. Each maps to one client error code of the
 * CONNECT_ERROR (jwt_result_code). */
enum jwt_result {
	JWT_OK = 0,
	JWT_MALFORMED = -1,         /* token_invalid: not a JWS compact token we can read */
	JWT_BAD_ALG = -2,           /* token_invalid: alg missing, "none", or outside the key's family */
	JWT_BAD_SIGNATURE = -3,     /* token_invalid */
	JWT_EXPIRED = -4,           /* token_expired: exp (+ leeway) passed */
	JWT_NOT_YET_VALID = -5,     /* token_expired: nbf or iat (- leeway) not reached */
	JWT_BAD_AUDIENCE = -6,      /* token_invalid: policy names an audience the token lacks */
	JWT_BAD_ISSUER = -7,        /* token_invalid: policy names an issuer, the token has another */
	JWT_NO_ROLE = -8,           /* role_invalid: no role claim, or not a usable role name */
	JWT_INTERNAL = -9,          /* token_invalid: out of memory or a libcrypto failure */
};

/* Which algorithms a key accepts. */
enum jwt_family {
	JWT_FAMILY_HS = 1,
	JWT_FAMILY_RS = 2,
	JWT_FAMILY_ES = 3,
};

struct jwt_key;

/* What the caller configures. Initialise with jwt_policy_init. All strings
 * are borrowed and must outlive the calls that use the policy. */
struct jwt_policy {
	/* Where the role is: a top-level claim name, or a dotted path of object
	 * keys as PostgREST's jwt-role-claim-key spells it (".app_metadata.role";
	 * a key holding dots or quotes is double-quoted: ."https://x.io/role").
	 * No array indexes. Default "role". */
	const char *role_claim;
	const char *audience;   /* NULL: aud not checked; else aud must contain it */
	const char *issuer;     /* NULL: iss not checked; else iss must equal it */
	int64_t leeway_sec;     /* clock skew allowed on exp and nbf (>= 0) */
};

/* The verified token. Zero-initialised on failure (nothing to clear). */
struct jwt_claims {
	char role[JWT_MAX_ROLE + 1];  /* NUL-terminated, 1..63 bytes, no NUL inside */
	bool has_exp;
	/* The exp claim in whole seconds, rounded up (a fractional exp of
	 * 100.5 is 101), clamped to int64; 0 when absent. The token stops
	 * verifying when now_sec >= exp + leeway. */
	int64_t exp;
	json_object *payload;         /* owned: the claims object; jwt_claims_clear */
};

/* Sets the defaults: role claim "role", no audience, no issuer, leeway
 * JWT_DEFAULT_LEEWAY. */
void jwt_policy_init(struct jwt_policy *p);

/* True when path is a role-claim path jwt_verify understands (for checking
 * configuration at startup; jwt_verify answers JWT_NO_ROLE to a bad one). */
bool jwt_role_path_valid(const char *path);

/* Builds a key from the bytes of the key file:
 *  - starting with "-----BEGIN " (after optional whitespace): one PEM
 *    public key, RSA of at least 2048 bits (RS256) or EC on P-256 (ES256).
 *    A private key, a certificate or any other key type is refused: the
 *    daemon must never hold what signs tokens. A PEM that fails to parse
 *    is refused, never taken as an HMAC secret.
 *  - a JWK ('{' ... "kty") is refused (not supported).
 *  - anything else: an HMAC secret, the raw bytes with one trailing line
 *    ending ("\n" or "\r\n") removed; at least JWT_MIN_HMAC_SECRET bytes.
 * On success returns 0 and *out (owned by the caller, jwt_key_free).
 * Otherwise returns -1 with a one-line reason in err (NUL-terminated,
 * truncated to errlen) and *out NULL. */
int jwt_key_load(const char *data, size_t len, struct jwt_key **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Wipes the secret and frees. NULL is a no-op. */
void jwt_key_free(struct jwt_key *k);

/* The algorithm family the key accepts (k not NULL). */
enum jwt_family jwt_key_family(const struct jwt_key *k);

/* Verifies token[0..len) (the compact form, nothing around it) with key k
 * under policy p (NULL: defaults) at Unix time now_sec. In order:
 * size and framing (three base64url segments, no padding, canonical),
 * the header (a JSON object; alg in the key's family; no crit), the
 * signature, then the payload (a JSON object): iss, aud, exp, nbf, iat,
 * role.
 * The payload is parsed only once the signature is good.
 * Returns JWT_OK and fills *out (release with jwt_claims_clear), or a
 * negative enum jwt_result and *out holds nothing. */
int jwt_verify(const struct jwt_key *k, const char *token, size_t len,
	       const struct jwt_policy *p, int64_t now_sec, struct jwt_claims *out)
	__attribute__((warn_unused_result));

/* Releases the payload and zeroes c. Clearing twice is harmless. */
void jwt_claims_clear(struct jwt_claims *c);

/* The CONNECT_ERROR code for a result: "token_invalid", "token_expired",
 * "role_invalid"; NULL for JWT_OK. */
const char *jwt_result_code(int r);

/* A short human sentence for a result ("token expired"). Never NULL. */
const char *jwt_result_message(int r);

#endif
