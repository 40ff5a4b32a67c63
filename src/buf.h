/*
 * buf: an immutable, reference-counted byte buffer. A snapshot's frame is
 * built once into a buf and every client's output queue holds a reference;
 * the last buf_unref frees it. Single-threaded: the count is a plain int.
 */
#ifndef PGPUSH_BUF_H
#define PGPUSH_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	int refs;
	size_t len;
	uint8_t data[];
};

/* Allocates a buffer of len bytes (contents undefined) holding one
 * reference, owned by the caller. NULL when out of memory. */
struct buf *buf_new(size_t len);

/* buf_new + memcpy. */
struct buf *buf_from(const void *data, size_t len);

static inline struct buf *buf_ref(struct buf *b)
{
	b->refs++;
	return b;
}

/* Drops one reference; frees at zero. buf_unref(NULL) is a no-op. */
void buf_unref(struct buf *b);

#endif
