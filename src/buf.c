#include "autoconfig.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

struct buf *buf_new(size_t len)
{
	struct buf *b = malloc(sizeof(*b) + len);

	if (!b)
		return NULL;
	b->refs = 1;
	b->len = len;
	return b;
}

struct buf *buf_from(const void *data, size_t len)
{
	struct buf *b = buf_new(len);

	if (b && len)
		memcpy(b->data, data, len);
	return b;
}

void buf_unref(struct buf *b)
{
	if (b && --b->refs == 0)
		free(b);
}
