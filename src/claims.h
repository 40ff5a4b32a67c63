/*
 * claims: the audience projection of a verified token (sans-I/O): the
 * canonical JSON text of the claims a dashboard declares, which the hub
 * uses as the audience key and hands to PostgreSQL as request.jwt.claims.
 *
 * Reads a struct jwt_claims that jwt_verify filled; owns nothing; the text
 * it returns is the caller's (free()). Calls nothing back.
 */
#ifndef PGPUSH_CLAIMS_H
#define PGPUSH_CLAIMS_H

#include <stddef.h>

struct jwt_claims;

/* The audience projection of a verified token: the canonical JSON text of
 * an object holding "role" (c->role) and each claim in declared[0..n) that
 * the payload has at top level, keys sorted bytewise at every depth, no
 * whitespace, numbers as the token wrote them. Claims not declared (sub,
 * iat, exp...) never appear. A declared "role" is ignored: "role" is always
 * the verified role. Equal projections give byte-identical text: this is
 * the audience key and what set_config('request.jwt.claims', ...) gets.
 * Returns 0 (JWT_OK) and *json_out (NUL-terminated, the caller's to
 * free()), or JWT_INTERNAL when out of memory. */
int claims_project(const struct jwt_claims *c, const char *const *declared, size_t n,
		   char **json_out) __attribute__((warn_unused_result));

#endif
