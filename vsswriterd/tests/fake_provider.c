// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fake_provider.h"

static int fake_prepare(void *ctx, struct wd_provider_error *e)
{
	struct fake_provider *fp = ctx;

	if (fp->fail_prepare) {
		e->err = fp->fail_prepare;
		snprintf(e->message, sizeof(e->message), "fake: module not loaded");
		return fp->fail_prepare;
	}
	return 0;
}

static int fake_create(void *ctx, const struct wd_create_request *req,
		       struct wd_create_outcome *out, struct wd_provider_error *e)
{
	struct fake_provider *fp = ctx;
	struct fake_set *s;
	size_t i;

	fp->creates++;
	snprintf(fp->last_storage, sizeof(fp->last_storage), "%s", req->storage_path);
	if (fp->during_create)
		fp->during_create(fp->during_arg);
	if (fp->create_delay_ms) {
		struct timespec ts = { fp->create_delay_ms / 1000,
				       (long)(fp->create_delay_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (fp->fail_create) {
		e->err = fp->fail_create;
		snprintf(e->message, sizeof(e->message), "fake: storage too small");
		snprintf(e->object, sizeof(e->object), "%s", req->storage_path);
		return fp->fail_create;
	}
	if (fp->set_count >= FAKE_MAX_SETS)
		return -ENOSPC;
	s = &fp->sets[fp->set_count++];
	vsw_random_uuid(s->id);
	for (i = 0; i < req->device_count; i++)
		s->devices[i] = req->devices[i];
	s->device_count = req->device_count;
	s->created_ns = vsw_realtime_ns();
	s->hold_limit_ms = req->hold_limit_ms;
	s->exists = true;
	snprintf(out->set_id, sizeof(out->set_id), "%s", s->id);
	out->hold_us = 42;
	out->created_ns = s->created_ns;
	out->snapshots = json_object_new_array();
	return 0;
}

struct fake_set *fake_set_find(struct fake_provider *fp, const char *id)
{
	size_t i;

	for (i = 0; i < fp->set_count; i++)
		if (!strcmp(fp->sets[i].id, id))
			return &fp->sets[i];
	return NULL;
}

static int fake_delete(void *ctx, const char *set_id, struct wd_provider_error *e)
{
	struct fake_provider *fp = ctx;
	struct fake_set *s = fake_set_find(fp, set_id);

	(void)e;
	fp->deletes++;
	if (s)
		s->exists = false;
	return 0;
}

static int fake_sets_since(void *ctx, const dev_t *devices, size_t device_count,
			   uint64_t since_ns, char (*ids)[VSW_ID_STRLEN], size_t max,
			   size_t *count)
{
	struct fake_provider *fp = ctx;
	size_t i, j, k;

	*count = 0;
	for (i = 0; i < fp->set_count; i++) {
		bool ours = false;

		if (!fp->sets[i].exists || fp->sets[i].created_ns < since_ns)
			continue;
		for (j = 0; j < fp->sets[i].device_count; j++)
			for (k = 0; k < device_count; k++)
				if (fp->sets[i].devices[j] == devices[k])
					ours = true;
		if (ours && *count < max)
			snprintf(ids[(*count)++], VSW_ID_STRLEN, "%s", fp->sets[i].id);
	}
	return 0;
}

static int fake_set_exists(void *ctx, const char *set_id)
{
	struct fake_set *s = fake_set_find(ctx, set_id);

	return s && s->exists;
}

size_t fake_sets_alive(const struct fake_provider *fp)
{
	size_t i, n = 0;

	for (i = 0; i < fp->set_count; i++)
		n += fp->sets[i].exists;
	return n;
}

const struct wd_provider fake_provider_ops = {
	.prepare = fake_prepare,
	.create = fake_create,
	.delete_set = fake_delete,
	.sets_since = fake_sets_since,
	.set_exists = fake_set_exists,
};
