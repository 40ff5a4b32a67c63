/*
 * snapshot: one immutable dashboard document, built once per recompute:
 * the document text with version, generatedAt and reason added, and the
 * complete WebSocket frame of 42["dashboardDataUpdate",<doc>] that every
 * client's queue shares by reference. Refcounted; the hub holds the current
 * one, acks being built from doc.
 */
#ifndef PGPUSH_SNAPSHOT_H
#define PGPUSH_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct snapshot {
	int refs;
	int64_t version;
	int64_t generated_ms;
	char *doc;          /* NUL-terminated JSON object */
	size_t doc_len;
	struct buf *frame;  /* WebSocket text frame, shared by all clients */
	struct buf *frame_z;/* the same, permessage-deflate compressed, or NULL */
};

enum snapshot_error {
	SNAPSHOT_ERR_NOMEM = -1,
	SNAPSHOT_ERR_NOT_JSON = -2,    /* the query result is not valid JSON */
	SNAPSHOT_ERR_NOT_OBJECT = -3,  /* valid JSON, but not an object */
};

/* Builds a snapshot from the query's JSON text. reason is any string (it is
 * escaped). On success *out holds one reference owned by the caller. */
int snapshot_new(const char *json, size_t len, int64_t version, int64_t generated_ms,
		 const char *reason, struct snapshot **out)
	__attribute__((warn_unused_result));

/* The same for namespace nsp ("/ops"; NULL or "/": the main one): the
 * frame is 42/ops,["dashboardDataUpdate",<doc>]. */
int snapshot_new_nsp(const char *json, size_t len, int64_t version, int64_t generated_ms,
		     const char *reason, const char *nsp, struct snapshot **out)
	__attribute__((warn_unused_result));

/* Builds frame_z once (RFC 7692, no context takeover: one compressed frame
 * serves every client that negotiated it). Keeps it only when smaller than
 * the plain frame. Returns 0, or -1 when out of memory (frame_z stays NULL
 * and clients get the plain frame). */
int snapshot_deflate(struct snapshot *s, int level);

static inline struct snapshot *snapshot_ref(struct snapshot *s)
{
	s->refs++;
	return s;
}

/* snapshot_unref(NULL) is a no-op. */
void snapshot_unref(struct snapshot *s);

/* Copies valid JSON text to out (room for len bytes) without the
 * whitespace between tokens; strings are copied as they are. Returns the
 * new length. */
size_t snapshot_compact_json(const char *in, size_t len, char *out);

/* Builds the frame of 42["<event>",<json>] (json must be valid JSON). */
struct buf *snapshot_event_frame(const char *event, const char *json, size_t json_len);
/* The same in namespace nsp (42/ops,[...]; NULL, "" or "/": the main one). */
struct buf *snapshot_event_frame_nsp(const char *nsp, const char *event, const char *json,
				     size_t json_len);

/* Appends s to dst as a JSON string literal (quotes included) into a
 * buffer of dstlen; returns the length or -1 when it does not fit. */
long snapshot_json_string(const char *s, char *dst, size_t dstlen);

#endif
