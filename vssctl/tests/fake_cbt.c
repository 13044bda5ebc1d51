// SPDX-License-Identifier: GPL-2.0
/*
 * Changed-block tracking of the simulated module, as the "Changed-block
 * tracking" section of <linux/vss.h> describes it: generations, points
 * made by snapshot commits, one map per interval, changes between two
 * points streamed in small messages, mark-dirty, and the save and restore
 * steps with the module's verdict. See fake_kernel.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/genetlink.h>

#include <netlink/genl/genl.h>

#include "fake_kernel.h"

static struct fake_cbt_map *map_of(struct fake_cbt *t, uint64_t seq)
{
	return &t->maps[seq % FAKE_CBT_INTERVALS];
}

static bool test_block(const struct fake_cbt_map *m, uint64_t block)
{
	return m->bits[block / 8] & (1u << (block % 8));
}

static void set_block(struct fake_cbt_map *m, uint64_t block)
{
	m->bits[block / 8] |= (uint8_t)(1u << (block % 8));
}

uint64_t fake_disk_size(const struct fake_state *st, uint32_t minor)
{
	uint64_t size = minor < FAKE_MAX_DISKS ? st->disks[minor].size : 0;

	if (!size || size > (uint64_t)FAKE_CBT_BLOCKS * FAKE_CBT_BLOCK_SIZE)
		size = FAKE_CBT_SIZE;
	return size;
}

struct fake_cbt *fake_cbt_find(struct fake_state *st, uint32_t major, uint32_t minor)
{
	size_t i;

	for (i = 0; i < FAKE_MAX_TRACKED; i++)
		if (st->tracked[i].used && st->tracked[i].major == major &&
		    st->tracked[i].minor == minor)
			return &st->tracked[i];
	return NULL;
}

static void mark(struct fake_cbt_map *m, uint64_t offset, uint64_t length)
{
	uint64_t b;

	for (b = offset / FAKE_CBT_BLOCK_SIZE;
	     b <= (offset + length - 1) / FAKE_CBT_BLOCK_SIZE && b < FAKE_CBT_BLOCKS; b++)
		set_block(m, b);
}

void fake_cbt_write(struct fake_state *st, uint32_t major, uint32_t minor,
		    uint64_t offset, uint64_t length)
{
	struct fake_cbt *t = fake_cbt_find(st, major, minor);

	if (t && length)
		mark(map_of(t, t->seq), offset, length);
	if (minor < FAKE_MAX_DISKS)
		st->disks[minor].write_ios++;
}

static struct fake_cbt *start_tracking(struct fake_kernel *k, uint32_t major,
				       uint32_t minor)
{
	size_t i;

	for (i = 0; i < FAKE_MAX_TRACKED; i++) {
		struct fake_cbt *t = &k->state.tracked[i];

		if (t->used)
			continue;
		memset(t, 0, sizeof(*t));
		t->used = true;
		t->major = major;
		t->minor = minor;
		fake_make_id(t->generation, 0x9e, ++k->state.next_generation);
		t->started_ns = fake_realtime_ns();
		return t;
	}
	return NULL;
}

static void device_name(uint32_t minor, char *buf, size_t len)
{
	snprintf(buf, len, "fake%u", minor);
}

static void put_cbt(struct fake_kernel *k, struct nl_msg *msg, int type,
		    const struct fake_cbt *t)
{
	struct nlattr *nest = nla_nest_start(msg, type);
	char name[32];

	device_name(t->minor, name, sizeof(name));
	fake_put_device(msg, VSS_A_DEVICE, t->major, t->minor, name);
	nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, t->generation);
	nla_put_u64(msg, VSS_A_CBT_SEQ, t->seq);
	nla_put_u64(msg, VSS_A_CBT_OLDEST_SEQ, t->oldest_seq);
	nla_put_u32(msg, VSS_A_CBT_BLOCK_SIZE, FAKE_CBT_BLOCK_SIZE);
	nla_put_u64(msg, VSS_A_CBT_SIZE, fake_disk_size(&k->state, t->minor));
	nla_put_u64(msg, VSS_A_CBT_MAP_BYTES,
		    (t->seq - t->oldest_seq + 1) * sizeof(struct fake_cbt_map));
	nla_put_u64(msg, VSS_A_CBT_STARTED_NS, t->started_ns);
	nla_nest_end(msg, nest);
}

/* A new point: the snapshot records it, the next interval begins. */
void fake_cbt_snapshot_point(struct fake_kernel *k, uint32_t major, uint32_t minor,
			     struct fake_snapshot *snap)
{
	struct fake_cbt *t = fake_cbt_find(&k->state, major, minor);

	if (!t && minor < FAKE_MAX_DISKS)
		t = start_tracking(k, major, minor);
	if (!t)
		return;
	t->seq++;
	if (t->seq - t->oldest_seq >= FAKE_CBT_INTERVALS) {
		t->oldest_seq = t->seq - FAKE_CBT_INTERVALS + 1;
		fake_kernel_send_cbt_event(k, VSS_EVENT_CBT_HISTORY_DROPPED, t, NULL);
	}
	memset(map_of(t, t->seq), 0, sizeof(struct fake_cbt_map));
	snap->has_cbt = true;
	memcpy(snap->cbt_generation, t->generation, VSS_ID_LEN);
	snap->cbt_seq = t->seq;
}

static bool has_snapshots(const struct fake_state *st, uint32_t major, uint32_t minor)
{
	uint32_t i;

	for (i = 0; i < st->count; i++)
		if (st->snaps[i].origin_major == major && st->snaps[i].origin_minor == minor)
			return true;
	return false;
}

/* VSS_A_DEVICE of a request; an error is acknowledged. */
static bool request_device(struct fake_kernel *k, const struct nlmsghdr *req,
			   struct nlattr **tb, uint32_t *major, uint32_t *minor)
{
	struct nlattr *dtb[VSS_A_MAX + 1] = { NULL };

	if (!tb[VSS_A_DEVICE] ||
	    nla_parse_nested(dtb, VSS_A_MAX, tb[VSS_A_DEVICE], NULL) < 0 ||
	    !dtb[VSS_A_DEV_MAJOR] || !dtb[VSS_A_DEV_MINOR]) {
		fake_send_ack(k, req, -EINVAL, "a device is required", tb[VSS_A_DEVICE]);
		return false;
	}
	*major = nla_get_u32(dtb[VSS_A_DEV_MAJOR]);
	*minor = nla_get_u32(dtb[VSS_A_DEV_MINOR]);
	if (*minor >= FAKE_MAX_DISKS) {
		fake_send_ack(k, req, -ENXIO, "no such block device", tb[VSS_A_DEVICE]);
		return false;
	}
	return true;
}

/* The tracked device a request names; ENOENT acknowledged if none. */
static struct fake_cbt *request_tracked(struct fake_kernel *k,
					const struct nlmsghdr *req, struct nlattr **tb)
{
	uint32_t major, minor;
	struct fake_cbt *t;

	if (!request_device(k, req, tb, &major, &minor))
		return NULL;
	t = fake_cbt_find(&k->state, major, minor);
	if (!t)
		fake_send_ack(k, req, -ENOENT, "device is not tracked", tb[VSS_A_DEVICE]);
	return t;
}

/* A message of a dump, in its own datagram. */
static struct nl_msg *dump_msg(const struct nlmsghdr *req, uint8_t cmd)
{
	return fake_reply_new(req, FAKE_FAMILY_ID, NLM_F_MULTI, cmd);
}

/* NLMSG_DONE, with the error and an extended ack if there is one. */
static void send_done(struct fake_kernel *k, const struct nlmsghdr *req, int error,
		      const char *message, const struct nlattr *blamed)
{
	struct nl_msg *msg = nlmsg_alloc_simple(NLMSG_DONE, NLM_F_MULTI |
						(message ? NLM_F_ACK_TLVS : 0));

	if (!msg)
		abort();
	nlmsg_hdr(msg)->nlmsg_seq = req->nlmsg_seq;
	nlmsg_append(msg, &error, sizeof(error), NLMSG_ALIGNTO);
	if (message)
		nla_put_string(msg, NLMSGERR_ATTR_MSG, message);
	if (blamed)
		nla_put_u32(msg, NLMSGERR_ATTR_OFFS,
			    (uint32_t)((const char *)blamed - (const char *)req));
	fake_send_msg(k->fd, msg);
}

static void handle_track(struct fake_kernel *k, const struct nlmsghdr *req,
			 struct nlattr **tb)
{
	uint32_t major, minor;
	struct fake_cbt *t;
	struct nl_msg *msg;

	if (!request_device(k, req, tb, &major, &minor))
		return;
	if (fake_cbt_find(&k->state, major, minor)) {
		fake_send_ack(k, req, -EALREADY, "device is already tracked",
			      tb[VSS_A_DEVICE]);
		return;
	}
	t = start_tracking(k, major, minor);
	if (!t) {
		fake_send_ack(k, req, -ENOMEM, "too many tracked devices", NULL);
		return;
	}
	msg = fake_reply_new(req, FAKE_FAMILY_ID, 0, VSS_CMD_TRACK);
	put_cbt(k, msg, VSS_A_CBT, t);
	fake_send_msg(k->fd, msg);
	fake_kernel_send_cbt_event(k, VSS_EVENT_CBT_NEW_GENERATION, t, "tracking started");
	fake_send_ack(k, req, 0, NULL, NULL);
	fake_save_if_kept(k);
}

static void handle_untrack(struct fake_kernel *k, const struct nlmsghdr *req,
			   struct nlattr **tb)
{
	struct fake_cbt *t = request_tracked(k, req, tb);

	if (!t)
		return;
	fake_kernel_send_cbt_event(k, VSS_EVENT_CBT_STOPPED, t, "untracked");
	memset(t, 0, sizeof(*t));
	fake_send_ack(k, req, 0, NULL, NULL);
	fake_save_if_kept(k);
}

static void handle_get(struct fake_kernel *k, const struct nlmsghdr *req,
		       struct nlattr **tb)
{
	struct fake_cbt *t;
	struct nl_msg *msg;
	size_t i;

	if (req->nlmsg_flags & NLM_F_DUMP) {
		for (i = 0; i < FAKE_MAX_TRACKED; i++) {
			if (!k->state.tracked[i].used)
				continue;
			msg = dump_msg(req, VSS_CMD_GET_CBT);
			put_cbt(k, msg, VSS_A_CBT, &k->state.tracked[i]);
			fake_send_msg(k->fd, msg);
		}
		send_done(k, req, 0, NULL, NULL);
		return;
	}
	t = request_tracked(k, req, tb);
	if (!t)
		return;
	msg = fake_reply_new(req, FAKE_FAMILY_ID, 0, VSS_CMD_GET_CBT);
	put_cbt(k, msg, VSS_A_CBT, t);
	fake_send_msg(k->fd, msg);
	fake_send_ack(k, req, 0, NULL, NULL);
}

/* A growing list of extents. */
struct extent_list {
	struct vss_cbt_extent *items;
	size_t count;
	size_t capacity;
};

static void extent_add(struct extent_list *l, uint64_t offset, uint64_t length)
{
	if (l->count == l->capacity) {
		l->capacity = l->capacity ? 2 * l->capacity : 64;
		l->items = realloc(l->items, l->capacity * sizeof(*l->items));
		if (!l->items)
			abort();
	}
	l->items[l->count].offset = offset;
	l->items[l->count].length = length;
	l->count++;
}

/* The runs of @m, each cut into pieces of at most @cut blocks (0: whole). */
static void extents_of(const struct fake_cbt_map *m, uint64_t size, uint64_t cut,
		       struct extent_list *out)
{
	uint64_t blocks = (size + FAKE_CBT_BLOCK_SIZE - 1) / FAKE_CBT_BLOCK_SIZE;
	uint64_t b = 0;

	while (b < blocks) {
		uint64_t first, end;

		if (!test_block(m, b)) {
			b++;
			continue;
		}
		first = b;
		while (b < blocks && test_block(m, b) && (!cut || b - first < cut))
			b++;
		end = b * FAKE_CBT_BLOCK_SIZE;
		extent_add(out, first * FAKE_CBT_BLOCK_SIZE,
			   (end > size ? size : end) - first * FAKE_CBT_BLOCK_SIZE);
	}
}

static void handle_changes(struct fake_kernel *k, const struct nlmsghdr *req,
			   struct nlattr **tb)
{
	struct extent_list list = { 0 };
	struct fake_cbt_map all;
	uint64_t from, to, s, size;
	struct fake_cbt *t;
	size_t i, j;

	if (!(req->nlmsg_flags & NLM_F_DUMP)) {
		fake_send_ack(k, req, -EOPNOTSUPP, "changes are a dump", NULL);
		return;
	}
	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	t = request_tracked(k, req, tb);
	if (!t)
		return;
	if (!tb[VSS_A_CBT_GENERATION] || !tb[VSS_A_CBT_FROM] ||
	    nla_len(tb[VSS_A_CBT_GENERATION]) != VSS_ID_LEN) {
		fake_send_ack(k, req, -EINVAL, "generation and starting point required", NULL);
		return;
	}
	if (memcmp(nla_data(tb[VSS_A_CBT_GENERATION]), t->generation, VSS_ID_LEN)) {
		send_done(k, req, -ESTALE, "the generation is not the device's",
			  tb[VSS_A_CBT_GENERATION]);
		return;
	}
	from = nla_get_u64(tb[VSS_A_CBT_FROM]);
	to = tb[VSS_A_CBT_TO] ? nla_get_u64(tb[VSS_A_CBT_TO]) : t->seq + 1;
	if (from > to || from > t->seq || (tb[VSS_A_CBT_TO] && to > t->seq)) {
		fake_send_ack(k, req, -EINVAL, "point not reached yet, or FROM after TO",
			      tb[VSS_A_CBT_TO] ? tb[VSS_A_CBT_TO] : tb[VSS_A_CBT_FROM]);
		return;
	}
	if (from < t->oldest_seq) {
		send_done(k, req, -ENODATA, "the map no longer reaches back to that point",
			  tb[VSS_A_CBT_FROM]);
		return;
	}
	memset(&all, 0, sizeof(all));
	for (s = from; s < to; s++)
		for (i = 0; i < sizeof(all.bits); i++)
			all.bits[i] |= map_of(t, s)->bits[i];
	size = fake_disk_size(&k->state, t->minor);
	extents_of(&all, size, FAKE_CBT_RUN_CUT, &list);
	if (k->opts.cbt_unsorted && list.count >= 2) {
		struct vss_cbt_extent swap = list.items[0];

		list.items[0] = list.items[1];
		list.items[1] = swap;
	}
	i = 0;
	do {
		struct nl_msg *msg = dump_msg(req, VSS_CMD_CBT_CHANGES);

		j = list.count - i < FAKE_CBT_EXTENTS_PER_MSG ? list.count - i :
								FAKE_CBT_EXTENTS_PER_MSG;
		nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, t->generation);
		nla_put_u32(msg, VSS_A_CBT_BLOCK_SIZE, FAKE_CBT_BLOCK_SIZE);
		if (j)
			nla_put(msg, VSS_A_CBT_EXTENTS, (int)(j * sizeof(*list.items)),
				list.items + i);
		fake_send_msg(k->fd, msg);
		i += j;
	} while (i < list.count);
	free(list.items);
	send_done(k, req, 0, NULL, NULL);
}

static void handle_mark_dirty(struct fake_kernel *k, const struct nlmsghdr *req,
			      struct nlattr **tb)
{
	uint64_t offset, length, size;
	struct fake_cbt *t;

	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	t = request_tracked(k, req, tb);
	if (!t)
		return;
	if (!tb[VSS_A_CBT_OFFSET] || !tb[VSS_A_CBT_LENGTH]) {
		fake_send_ack(k, req, -EINVAL, "offset and length required", NULL);
		return;
	}
	offset = nla_get_u64(tb[VSS_A_CBT_OFFSET]);
	length = nla_get_u64(tb[VSS_A_CBT_LENGTH]);
	size = fake_disk_size(&k->state, t->minor);
	if (!length) {
		fake_send_ack(k, req, -EINVAL, "zero length", tb[VSS_A_CBT_LENGTH]);
		return;
	}
	if (offset >= size || length > size - offset) {
		fake_send_ack(k, req, -ERANGE, "range past the end of the device",
			      tb[VSS_A_CBT_LENGTH]);
		return;
	}
	mark(map_of(t, t->seq), offset, length);
	k->state.last_mark_offset = offset;
	k->state.last_mark_length = length;
	fake_send_ack(k, req, 0, NULL, NULL);
	fake_save_if_kept(k);
}

static void handle_save(struct fake_kernel *k, const struct nlmsghdr *req,
			struct nlattr **tb)
{
	const struct fake_disk *disk;
	struct nlattr *nest;
	struct fake_cbt *t;
	struct nl_msg *msg;
	char name[32];
	uint64_t s, size;
	size_t i, j;

	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	t = request_tracked(k, req, tb);
	if (!t)
		return;
	if (has_snapshots(&k->state, t->major, t->minor)) {
		fake_send_ack(k, req, -EBUSY, "the device has snapshots", tb[VSS_A_DEVICE]);
		return;
	}
	disk = &k->state.disks[t->minor];
	size = fake_disk_size(&k->state, t->minor);
	device_name(t->minor, name, sizeof(name));
	msg = dump_msg(req, VSS_CMD_CBT_SAVE);
	nest = nla_nest_start(msg, VSS_A_CBT_STATE);
	fake_put_device(msg, VSS_A_DEVICE, t->major, t->minor, name);
	nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, t->generation);
	nla_put_u64(msg, VSS_A_CBT_SEQ, t->seq);
	nla_put_u64(msg, VSS_A_CBT_OLDEST_SEQ, t->oldest_seq);
	nla_put_u32(msg, VSS_A_CBT_BLOCK_SIZE, FAKE_CBT_BLOCK_SIZE);
	nla_put_u64(msg, VSS_A_CBT_SIZE, size);
	nla_put_u64(msg, VSS_A_CBT_STARTED_NS, t->started_ns);
	nla_put(msg, VSS_A_CBT_BOOT_ID, VSS_ID_LEN, k->state.boot_id);
	nla_put_u64(msg, VSS_A_CBT_DISKSEQ, disk->diskseq);
	nla_put_u64(msg, VSS_A_CBT_WRITE_IOS, disk->write_ios);
	/* A whole disk: no VSS_A_CBT_DIRECT_WRITE_IOS. */
	nla_put_u32(msg, VSS_A_CBT_SAVE_FLAGS, VSS_CBT_SAVED_IOSTAT |
		    (disk->other_openers ? 0 : VSS_CBT_SAVED_QUIESCENT));
	nla_nest_end(msg, nest);
	fake_send_msg(k->fd, msg);

	if (k->opts.cbt_save_breaks) {
		struct vss_cbt_extent bad = { .offset = size + FAKE_CBT_BLOCK_SIZE,
					      .length = FAKE_CBT_BLOCK_SIZE };

		msg = dump_msg(req, VSS_CMD_CBT_SAVE);
		nla_put_u64(msg, VSS_A_CBT_SEQ, t->seq);
		nla_put(msg, VSS_A_CBT_EXTENTS, sizeof(bad), &bad);
		fake_send_msg(k->fd, msg);
	}
	for (s = t->oldest_seq; s <= t->seq; s++) {
		struct extent_list list = { 0 };

		extents_of(map_of(t, s), size, 0, &list);
		for (i = 0; i < list.count; i += j) {
			j = list.count - i < FAKE_CBT_EXTENTS_PER_MSG ? list.count - i :
									FAKE_CBT_EXTENTS_PER_MSG;
			msg = dump_msg(req, VSS_CMD_CBT_SAVE);
			nla_put_u64(msg, VSS_A_CBT_SEQ, s);
			nla_put(msg, VSS_A_CBT_EXTENTS, (int)(j * sizeof(*list.items)),
				list.items + i);
			fake_send_msg(k->fd, msg);
		}
		free(list.items);
	}
	send_done(k, req, 0, NULL, NULL);
	fake_kernel_send_cbt_event(k, VSS_EVENT_CBT_STOPPED, t, "saved");
	memset(t, 0, sizeof(*t));
	fake_save_if_kept(k);
}

/* What the restore's state claims, read from VSS_A_CBT_STATE. */
struct claimed_state {
	uint8_t generation[VSS_ID_LEN], boot_id[VSS_ID_LEN];
	uint64_t seq, oldest_seq, size, started_ns, diskseq, write_ios;
	uint32_t block_size, save_flags;
	uint32_t major, minor;
	bool has_diskseq, has_direct_ios;
};

static bool read_state(struct nlattr *nest, struct claimed_state *c)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL }, *dtb[VSS_A_MAX + 1] = { NULL };

	memset(c, 0, sizeof(*c));
	if (nla_parse_nested(tb, VSS_A_MAX, nest, NULL) < 0 || !tb[VSS_A_DEVICE] ||
	    !tb[VSS_A_CBT_GENERATION] || !tb[VSS_A_CBT_SEQ] || !tb[VSS_A_CBT_OLDEST_SEQ] ||
	    !tb[VSS_A_CBT_BLOCK_SIZE] || !tb[VSS_A_CBT_SIZE] || !tb[VSS_A_CBT_BOOT_ID] ||
	    nla_len(tb[VSS_A_CBT_GENERATION]) != VSS_ID_LEN ||
	    nla_len(tb[VSS_A_CBT_BOOT_ID]) != VSS_ID_LEN ||
	    nla_parse_nested(dtb, VSS_A_MAX, tb[VSS_A_DEVICE], NULL) < 0 ||
	    !dtb[VSS_A_DEV_MAJOR] || !dtb[VSS_A_DEV_MINOR])
		return false;
	memcpy(c->generation, nla_data(tb[VSS_A_CBT_GENERATION]), VSS_ID_LEN);
	memcpy(c->boot_id, nla_data(tb[VSS_A_CBT_BOOT_ID]), VSS_ID_LEN);
	c->seq = nla_get_u64(tb[VSS_A_CBT_SEQ]);
	c->oldest_seq = nla_get_u64(tb[VSS_A_CBT_OLDEST_SEQ]);
	c->block_size = nla_get_u32(tb[VSS_A_CBT_BLOCK_SIZE]);
	c->size = nla_get_u64(tb[VSS_A_CBT_SIZE]);
	c->major = nla_get_u32(dtb[VSS_A_DEV_MAJOR]);
	c->minor = nla_get_u32(dtb[VSS_A_DEV_MINOR]);
	if (tb[VSS_A_CBT_STARTED_NS])
		c->started_ns = nla_get_u64(tb[VSS_A_CBT_STARTED_NS]);
	if ((c->has_diskseq = tb[VSS_A_CBT_DISKSEQ]))
		c->diskseq = nla_get_u64(tb[VSS_A_CBT_DISKSEQ]);
	if (tb[VSS_A_CBT_WRITE_IOS])
		c->write_ios = nla_get_u64(tb[VSS_A_CBT_WRITE_IOS]);
	if (tb[VSS_A_CBT_SAVE_FLAGS])
		c->save_flags = nla_get_u32(tb[VSS_A_CBT_SAVE_FLAGS]);
	c->has_direct_ios = tb[VSS_A_CBT_DIRECT_WRITE_IOS];
	return true;
}

/* The module's judgement: can the saved generation go on? */
static void judge(struct fake_kernel *k, struct fake_cbt *t,
		  const struct claimed_state *c)
{
	const struct fake_disk *disk = &k->state.disks[t->minor];

	t->verdict = VSS_CBT_VERDICT_NEW_GENERATION;
	if (c->size != fake_disk_size(&k->state, t->minor))
		snprintf(t->reason, sizeof(t->reason), "the device's size changed");
	else if (c->block_size != FAKE_CBT_BLOCK_SIZE)
		snprintf(t->reason, sizeof(t->reason), "the block size differs");
	else if (c->oldest_seq > c->seq || c->seq - c->oldest_seq >= FAKE_CBT_INTERVALS)
		snprintf(t->reason, sizeof(t->reason), "the saved points do not fit");
	else if (!memcmp(c->boot_id, k->state.boot_id, VSS_ID_LEN)) {
		if (c->diskseq != disk->diskseq)
			snprintf(t->reason, sizeof(t->reason),
				 "the disk was replaced since the save");
		else if (c->write_ios != disk->write_ios)
			snprintf(t->reason, sizeof(t->reason),
				 "the device was written %llu times while it was not tracked",
				 (unsigned long long)(disk->write_ios - c->write_ios));
		else
			t->verdict = VSS_CBT_VERDICT_CONTINUED;
	} else if (!(c->save_flags & VSS_CBT_SAVED_QUIESCENT)) {
		snprintf(t->reason, sizeof(t->reason),
			 "the device had other openers when it was saved");
	} else if (disk->write_ios) {
		snprintf(t->reason, sizeof(t->reason),
			 "the device was written since boot before tracking resumed");
	} else {
		t->verdict = VSS_CBT_VERDICT_CONTINUED;
	}
	if (t->verdict == VSS_CBT_VERDICT_CONTINUED)
		t->reason[0] = '\0';
}

static void send_restore_reply(struct fake_kernel *k, const struct nlmsghdr *req,
			       const struct fake_cbt *t)
{
	struct nl_msg *msg = fake_reply_new(req, FAKE_FAMILY_ID, 0, VSS_CMD_CBT_RESTORE);

	put_cbt(k, msg, VSS_A_CBT, t);
	nla_put_u32(msg, VSS_A_CBT_VERDICT, t->verdict);
	if (t->verdict == VSS_CBT_VERDICT_NEW_GENERATION)
		nla_put_string(msg, VSS_A_REASON, t->reason);
	fake_send_msg(k->fd, msg);
	fake_send_ack(k, req, 0, NULL, NULL);
}

static void restore_begin(struct fake_kernel *k, const struct nlmsghdr *req,
			  struct nlattr **tb, uint32_t major, uint32_t minor)
{
	struct fake_restore_log *log = &k->state.restore_log;
	struct claimed_state c;
	struct fake_cbt *t;

	if (fake_cbt_find(&k->state, major, minor)) {
		fake_send_ack(k, req, -EALREADY, "device is already tracked",
			      tb[VSS_A_DEVICE]);
		return;
	}
	if (has_snapshots(&k->state, major, minor)) {
		fake_send_ack(k, req, -EBUSY, "the device has snapshots", tb[VSS_A_DEVICE]);
		return;
	}
	if (!tb[VSS_A_CBT_STATE] || !read_state(tb[VSS_A_CBT_STATE], &c)) {
		fake_send_ack(k, req, -EINVAL, "incomplete saved state", tb[VSS_A_CBT_STATE]);
		return;
	}
	log->begins++;
	log->begin_had_diskseq = c.has_diskseq;
	log->begin_had_direct_ios = c.has_direct_ios;
	memcpy(log->begin_generation, c.generation, VSS_ID_LEN);
	log->begin_major = major;
	log->begin_minor = minor;
	log->state_major = c.major;
	log->state_minor = c.minor;
	/* Tracking starts at once, so that nothing is missed whatever follows. */
	t = start_tracking(k, major, minor);
	if (!t) {
		fake_send_ack(k, req, -ENOMEM, "too many tracked devices", NULL);
		return;
	}
	t->restoring = true;
	memcpy(t->saved_generation, c.generation, VSS_ID_LEN);
	t->saved_seq = c.seq;
	t->saved_oldest_seq = c.oldest_seq;
	t->saved_started_ns = c.started_ns;
	judge(k, t, &c);
	send_restore_reply(k, req, t);
	fake_save_if_kept(k);
}

/* What the module does with a map it cannot take: the new generation stays. */
static void drop_saved_map(struct fake_cbt *t, const char *reason)
{
	t->verdict = VSS_CBT_VERDICT_NEW_GENERATION;
	snprintf(t->reason, sizeof(t->reason), "%s", reason);
}

static void restore_interval(struct fake_kernel *k, const struct nlmsghdr *req,
			     struct nlattr **tb, struct fake_cbt *t)
{
	const unsigned char *data;
	uint64_t seq, size;
	size_t n, i;

	if (!tb[VSS_A_CBT_SEQ] || !tb[VSS_A_CBT_EXTENTS] ||
	    nla_len(tb[VSS_A_CBT_EXTENTS]) % sizeof(struct vss_cbt_extent)) {
		fake_send_ack(k, req, -EINVAL, "an interval and its extents are required", NULL);
		return;
	}
	seq = nla_get_u64(tb[VSS_A_CBT_SEQ]);
	size = fake_disk_size(&k->state, t->minor);
	n = (size_t)nla_len(tb[VSS_A_CBT_EXTENTS]) / sizeof(struct vss_cbt_extent);
	data = nla_data(tb[VSS_A_CBT_EXTENTS]);
	if (k->opts.cbt_interval_error) {
		if (k->opts.cbt_interval_error == EINVAL)
			drop_saved_map(t, "the saved map does not fit the device");
		fake_send_ack(k, req, -k->opts.cbt_interval_error,
			      "the interval could not be taken", tb[VSS_A_CBT_EXTENTS]);
		return;
	}
	if (seq < t->saved_oldest_seq || seq > t->saved_seq) {
		drop_saved_map(t, "the saved map is inconsistent");
		fake_send_ack(k, req, -EINVAL, "interval outside the saved points",
			      tb[VSS_A_CBT_SEQ]);
		return;
	}
	for (i = 0; i < n; i++) {
		struct vss_cbt_extent e;

		memcpy(&e, data + i * sizeof(e), sizeof(e));
		if (!e.length || e.offset % FAKE_CBT_BLOCK_SIZE || e.offset >= size ||
		    e.length > size - e.offset) {
			drop_saved_map(t, "the saved map does not fit the device");
			fake_send_ack(k, req, -EINVAL, "extent does not fit the device",
				      tb[VSS_A_CBT_EXTENTS]);
			return;
		}
		mark(&t->saved_maps[seq % FAKE_CBT_INTERVALS], e.offset, e.length);
	}
	k->state.restore_log.interval_requests++;
	k->state.restore_log.extents += n;
	fake_send_ack(k, req, 0, NULL, NULL);
	fake_save_if_kept(k);
}

static void restore_commit(struct fake_kernel *k, const struct nlmsghdr *req,
			   struct fake_cbt *t)
{
	k->state.restore_log.commits++;
	if (t->verdict == VSS_CBT_VERDICT_CONTINUED) {
		struct fake_cbt_map since_begin = *map_of(t, t->seq);
		size_t i;

		memcpy(t->generation, t->saved_generation, VSS_ID_LEN);
		t->seq = t->saved_seq;
		t->oldest_seq = t->saved_oldest_seq;
		t->started_ns = t->saved_started_ns;
		memcpy(t->maps, t->saved_maps, sizeof(t->maps));
		for (i = 0; i < sizeof(since_begin.bits); i++)
			map_of(t, t->seq)->bits[i] |= since_begin.bits[i];
	}
	t->restoring = false;
	send_restore_reply(k, req, t);
	fake_save_if_kept(k);
}

static void handle_restore(struct fake_kernel *k, const struct nlmsghdr *req,
			   struct nlattr **tb)
{
	uint32_t flags = tb[VSS_A_FLAGS] ? nla_get_u32(tb[VSS_A_FLAGS]) : 0;
	struct fake_restore_log *log = &k->state.restore_log;
	uint32_t major, minor;
	struct fake_cbt *t;

	if (req->nlmsg_len > log->max_request_len)
		log->max_request_len = req->nlmsg_len;
	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	if (!request_device(k, req, tb, &major, &minor))
		return;
	if (flags & VSS_CBT_RESTORE_BEGIN) {
		restore_begin(k, req, tb, major, minor);
		return;
	}
	t = fake_cbt_find(&k->state, major, minor);
	if (!t || !t->restoring) {
		fake_send_ack(k, req, -ENOENT, "no restore in progress", tb[VSS_A_DEVICE]);
		return;
	}
	if (flags & VSS_CBT_RESTORE_COMMIT)
		restore_commit(k, req, t);
	else
		restore_interval(k, req, tb, t);
}

void fake_cbt_handle(struct fake_kernel *k, const struct nlmsghdr *req,
		     struct nlattr **tb, uint8_t cmd)
{
	switch (cmd) {
	case VSS_CMD_GET_CBT:
		handle_get(k, req, tb);
		return;
	case VSS_CMD_CBT_CHANGES:
		handle_changes(k, req, tb);
		return;
	case VSS_CMD_CBT_SAVE:
		handle_save(k, req, tb);
		return;
	case VSS_CMD_CBT_RESTORE:
		handle_restore(k, req, tb);
		return;
	default:
		break;
	}
	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	if (cmd == VSS_CMD_TRACK)
		handle_track(k, req, tb);
	else if (cmd == VSS_CMD_UNTRACK)
		handle_untrack(k, req, tb);
	else
		handle_mark_dirty(k, req, tb);
}
