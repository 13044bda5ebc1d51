// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Saving a device's changed-block map to a state file, and resuming
 * tracking from one: VSS_CMD_CBT_SAVE and VSS_CMD_CBT_RESTORE.
 *
 * State file format, version 1 (also in Documentation/cbt-state-file.rst).
 * Every integer is little-endian. The file is a preamble and records:
 *
 *   preamble, 16 bytes: magic "\x89VSSCBT\n", u32 format version (1),
 *   u32 zero.
 *   record: u32 type, u32 payload length, the payload, then zero bytes up
 *   to a multiple of 8.
 *
 *   type 1, STATE, first, once; payload 112 bytes:
 *      0 generation (16)        16 boot id (16)
 *     32 u64 seq                40 u64 oldest seq
 *     48 u64 size               56 u64 started ns
 *     64 u64 diskseq            72 u64 write ios
 *     80 u64 direct write ios   88 u64 saved ns (CLOCK_REALTIME, libvss)
 *     96 u32 block size        100 u32 save flags (VSS_CBT_SAVED_*)
 *    104 u32 present: which optional attributes the module gave
 *        (STATE_HAS_*), so that a restore sends back exactly those
 *    108 u32 zero
 *   type 2, DEVICE, second, once: u32 major, u32 minor, the kernel name
 *      with its NUL (at most 32 bytes).
 *   types 3..6, the device's stable names, any number (enum
 *      vss_cbt_identity_kind): text with its NUL, at most 512 bytes.
 *   type 16, INTERVAL, any number: u64 seq, then one or more extents of
 *      u64 offset and u64 length. The records of one interval may follow
 *      each other; seqs never go down, and within an interval extents are
 *      sorted and never overlap.
 *   type 255, END, last, once; payload 24 bytes: u64 INTERVAL records,
 *      u64 extents, u32 zero, u32 CRC-32C of every byte of the file
 *      before it. The CRC is thus the file's last four bytes.
 *
 * A reader refuses anything else: another magic or version, an unknown
 * record type, records out of order, sizes that do not add up, values
 * that do not fit the device (block size, extents past its end).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "internal.h"

#define CBT_FILE_MAGIC		"\x89VSSCBT\n"
#define CBT_FILE_MAGIC_LEN	8
#define CBT_FILE_VERSION	1
#define CBT_PREAMBLE_LEN	16
#define CBT_RECORD_HEADER_LEN	8

enum cbt_record_type {
	CBT_REC_STATE = 1,
	CBT_REC_DEVICE = 2,
	/* 3..6: enum vss_cbt_identity_kind */
	CBT_REC_INTERVAL = 16,
	CBT_REC_END = 255,
};

#define CBT_STATE_LEN		112
#define CBT_END_LEN		24
#define CBT_END_RECORD_LEN	(CBT_RECORD_HEADER_LEN + CBT_END_LEN)
#define CBT_EXTENT_LEN		16
/* A record larger than this is corruption, not a map. */
#define CBT_RECORD_MAX		(64u << 20)

/* STATE.present: optional attributes of VSS_A_CBT_STATE. */
#define STATE_HAS_STARTED	(1u << 0)
#define STATE_HAS_DISKSEQ	(1u << 1)
#define STATE_HAS_WRITE_IOS	(1u << 2)
#define STATE_HAS_DIRECT_IOS	(1u << 3)
#define STATE_HAS_SAVE_FLAGS	(1u << 4)
#define STATE_HAS_ALL		0x1fu

/* Extents per restore request: 8 KiB of them keeps a request near 8 KiB. */
#define RESTORE_EXTENTS_PER_REQUEST	512

/* What a state file holds besides its intervals. */
struct cbt_saved {
	struct vss_cbt_info info;	/* device, generation, seqs, sizes */
	struct vss_id boot_id;
	uint64_t diskseq;
	uint64_t write_ios;
	uint64_t direct_write_ios;
	uint64_t saved_ns;
	uint32_t save_flags;
	uint32_t present;		/* STATE_HAS_* */
	struct vss_cbt_identity identity;
};

static void put_le32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;
	int i;

	for (i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static bool valid_block_size(uint32_t size)
{
	return size >= VSS_CBT_MIN_BLOCK_SIZE && !(size & (size - 1));
}

/*
 * What every saved state must satisfy, whether it comes from the module
 * (a save) or from a file (a restore). Returns NULL or what is wrong.
 */
static const char *check_saved_state(const struct cbt_saved *s)
{
	const struct vss_cbt_info *i = &s->info;

	if (!valid_block_size(i->block_size))
		return "block size is not a power of two of at least 4 KiB";
	if (!i->size)
		return "tracked size is zero";
	if ((i->size - 1) / i->block_size >= VSS_CBT_MAX_BLOCKS)
		return "more blocks than a map can hold";
	if (i->oldest_seq > i->seq)
		return "oldest point after the current one";
	if (!i->device.name[0])
		return "no kernel name for the device";
	return NULL;
}

/*
 * Checks one extent of interval @seq against the state and what came
 * before it in the same interval (@end: where the previous one ended).
 */
static const char *check_extent(const struct cbt_saved *s, uint64_t offset,
				uint64_t length, bool first_of_interval,
				uint64_t end)
{
	const struct vss_cbt_info *i = &s->info;

	if (!length || offset > UINT64_MAX - length)
		return "empty or overflowing extent";
	if (offset + length > i->size)
		return "extent past the end of the device";
	if (offset % i->block_size ||
	    ((offset + length) % i->block_size && offset + length != i->size))
		return "extent not aligned to the block size";
	if (!first_of_interval && offset < end)
		return "extents out of order or overlapping";
	return NULL;
}

/* ---- writing ---- */

#define WRITER_BUFSIZE	(64 * 1024)

/* Buffered, checksummed output to the temporary file. */
struct cbt_writer {
	int fd;
	int err;			/* first failure, negative errno */
	uint32_t crc;
	uint64_t interval_records;
	uint64_t extents;
	size_t used;
	unsigned char buf[WRITER_BUFSIZE];
};

static void writer_flush(struct cbt_writer *w)
{
	size_t done = 0;

	while (!w->err && done < w->used) {
		ssize_t n = write(w->fd, w->buf + done, w->used - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			w->err = n < 0 ? -errno : -EIO;
		else
			done += (size_t)n;
	}
	w->used = 0;
}

static void writer_put(struct cbt_writer *w, const void *data, size_t len)
{
	const unsigned char *p = data;

	w->crc = vss_crc32c(w->crc, data, len);
	while (len && !w->err) {
		size_t n = WRITER_BUFSIZE - w->used;

		if (n > len)
			n = len;
		memcpy(w->buf + w->used, p, n);
		w->used += n;
		p += n;
		len -= n;
		if (w->used == WRITER_BUFSIZE)
			writer_flush(w);
	}
}

static void writer_record_header(struct cbt_writer *w, uint32_t type, size_t len)
{
	unsigned char header[CBT_RECORD_HEADER_LEN];

	put_le32(header, type);
	put_le32(header + 4, (uint32_t)len);
	writer_put(w, header, sizeof(header));
}

static void writer_pad(struct cbt_writer *w, size_t len)
{
	static const unsigned char zeros[8];

	if (len % 8)
		writer_put(w, zeros, 8 - len % 8);
}

static void writer_record(struct cbt_writer *w, uint32_t type, const void *payload,
			  size_t len)
{
	writer_record_header(w, type, len);
	writer_put(w, payload, len);
	writer_pad(w, len);
}

static void write_head(struct cbt_writer *w, const struct cbt_saved *s)
{
	unsigned char pre[CBT_PREAMBLE_LEN] = { 0 }, st[CBT_STATE_LEN] = { 0 };
	unsigned char dev[8 + VSS_DEVICE_NAME_MAX];
	size_t name_len = strlen(s->info.device.name), i;

	memcpy(pre, CBT_FILE_MAGIC, CBT_FILE_MAGIC_LEN);
	put_le32(pre + 8, CBT_FILE_VERSION);
	writer_put(w, pre, sizeof(pre));

	memcpy(st, s->info.generation.bytes, VSS_ID_LEN);
	memcpy(st + 16, s->boot_id.bytes, VSS_ID_LEN);
	put_le64(st + 32, s->info.seq);
	put_le64(st + 40, s->info.oldest_seq);
	put_le64(st + 48, s->info.size);
	put_le64(st + 56, s->info.started_ns);
	put_le64(st + 64, s->diskseq);
	put_le64(st + 72, s->write_ios);
	put_le64(st + 80, s->direct_write_ios);
	put_le64(st + 88, s->saved_ns);
	put_le32(st + 96, s->info.block_size);
	put_le32(st + 100, s->save_flags);
	put_le32(st + 104, s->present);
	writer_record(w, CBT_REC_STATE, st, sizeof(st));

	put_le32(dev, s->info.device.major);
	put_le32(dev + 4, s->info.device.minor);
	memcpy(dev + 8, s->info.device.name, name_len + 1);
	writer_record(w, CBT_REC_DEVICE, dev, 8 + name_len + 1);

	for (i = 0; i < s->identity.count; i++) {
		const struct vss_cbt_identity_entry *e = &s->identity.entries[i];

		writer_record(w, e->kind, e->text, strlen(e->text) + 1);
	}
}

static void write_interval(struct cbt_writer *w, uint64_t seq,
			   const struct vss_cbt_extent *extents, size_t n)
{
	unsigned char item[CBT_EXTENT_LEN];
	size_t i;

	writer_record_header(w, CBT_REC_INTERVAL, 8 + n * CBT_EXTENT_LEN);
	put_le64(item, seq);
	writer_put(w, item, 8);
	for (i = 0; i < n; i++) {
		put_le64(item, extents[i].offset);
		put_le64(item + 8, extents[i].length);
		writer_put(w, item, sizeof(item));
	}
	/* 8 + 16n is a multiple of 8: no padding. */
	w->interval_records++;
	w->extents += n;
}

static void write_end(struct cbt_writer *w)
{
	unsigned char end[CBT_END_LEN] = { 0 };

	writer_record_header(w, CBT_REC_END, CBT_END_LEN);
	put_le64(end, w->interval_records);
	put_le64(end + 8, w->extents);
	writer_put(w, end, 20);
	put_le32(end + 20, w->crc);
	writer_put(w, end + 20, 4);
	writer_flush(w);
}

/* ---- saving ---- */

static const struct nla_policy save_reply_policy[VSS_A_MAX + 1] = {
	[VSS_A_CBT_STATE] = { .type = NLA_NESTED },
	[VSS_A_CBT_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_EXTENTS] = { .type = NLA_UNSPEC },
};

#define ID_POLICY { .type = NLA_UNSPEC, .minlen = VSS_ID_LEN, .maxlen = VSS_ID_LEN }

static const struct nla_policy state_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEVICE] = { .type = NLA_NESTED },
	[VSS_A_CBT_GENERATION] = ID_POLICY,
	[VSS_A_CBT_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_OLDEST_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_BLOCK_SIZE] = { .type = NLA_U32 },
	[VSS_A_CBT_SIZE] = { .type = NLA_U64 },
	[VSS_A_CBT_STARTED_NS] = { .type = NLA_U64 },
	[VSS_A_CBT_BOOT_ID] = ID_POLICY,
	[VSS_A_CBT_DISKSEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_WRITE_IOS] = { .type = NLA_U64 },
	[VSS_A_CBT_DIRECT_WRITE_IOS] = { .type = NLA_U64 },
	[VSS_A_CBT_SAVE_FLAGS] = { .type = NLA_U32 },
};

/* The state of one VSS_CMD_CBT_SAVE dump being written out. */
struct save_walk {
	const struct vss_device *device;
	struct cbt_saved *saved;
	struct cbt_writer *writer;
	bool have_state;		/* the module handed the map over */
	bool in_interval;
	uint64_t seq;			/* of the interval being written */
	uint64_t end;			/* of its last extent */
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int parse_state(struct vss_handle *h, struct nlattr *nest,
		       struct save_walk *sw)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct cbt_saved *s = sw->saved;
	const char *problem;
	struct {
		int attr;
		uint32_t flag;
		uint64_t *field;
	} optional[] = {
		{ VSS_A_CBT_STARTED_NS, STATE_HAS_STARTED, &s->info.started_ns },
		{ VSS_A_CBT_DISKSEQ, STATE_HAS_DISKSEQ, &s->diskseq },
		{ VSS_A_CBT_WRITE_IOS, STATE_HAS_WRITE_IOS, &s->write_ios },
		{ VSS_A_CBT_DIRECT_WRITE_IOS, STATE_HAS_DIRECT_IOS, &s->direct_write_ios },
	};
	size_t i;

	if (nla_parse_nested(tb, VSS_A_MAX, nest, state_policy) < 0 ||
	    !tb[VSS_A_DEVICE] || !tb[VSS_A_CBT_GENERATION] || !tb[VSS_A_CBT_SEQ] ||
	    !tb[VSS_A_CBT_OLDEST_SEQ] || !tb[VSS_A_CBT_BLOCK_SIZE] ||
	    !tb[VSS_A_CBT_SIZE] || !tb[VSS_A_CBT_BOOT_ID] ||
	    vss_parse_device(tb[VSS_A_DEVICE], &s->info.device))
		return vss_error_set(h, -EPROTO, NULL,
				     "the module's saved state is incomplete");
	vss_id_get(tb[VSS_A_CBT_GENERATION], &s->info.generation);
	vss_id_get(tb[VSS_A_CBT_BOOT_ID], &s->boot_id);
	s->info.seq = nla_get_u64(tb[VSS_A_CBT_SEQ]);
	s->info.oldest_seq = nla_get_u64(tb[VSS_A_CBT_OLDEST_SEQ]);
	s->info.block_size = nla_get_u32(tb[VSS_A_CBT_BLOCK_SIZE]);
	s->info.size = nla_get_u64(tb[VSS_A_CBT_SIZE]);
	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		if (!tb[optional[i].attr])
			continue;
		*optional[i].field = nla_get_u64(tb[optional[i].attr]);
		s->present |= optional[i].flag;
	}
	if (tb[VSS_A_CBT_SAVE_FLAGS]) {
		s->save_flags = nla_get_u32(tb[VSS_A_CBT_SAVE_FLAGS]);
		s->present |= STATE_HAS_SAVE_FLAGS;
	}
	s->saved_ns = realtime_ns();
	if (s->info.device.major != sw->device->major ||
	    s->info.device.minor != sw->device->minor)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module saved the state of another device");
	/* An older module may leave the name out: keep ours. */
	if (!s->info.device.name[0])
		snprintf(s->info.device.name, sizeof(s->info.device.name), "%s",
			 sw->device->name);
	problem = check_saved_state(s);
	if (problem)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module's saved state is invalid: %s", problem);
	return 0;
}

static int save_interval(struct vss_handle *h, struct save_walk *sw,
			 uint64_t seq, const struct nlattr *attr)
{
	const struct cbt_saved *s = sw->saved;
	const unsigned char *data = nla_data(attr);
	size_t n = (size_t)nla_len(attr), i;
	struct vss_cbt_extent *extents;

	if (n % sizeof(struct vss_cbt_extent))
		return vss_error_set(h, -EPROTO, NULL, "the module sent a partial extent");
	n /= sizeof(struct vss_cbt_extent);
	if (seq < s->info.oldest_seq || seq > s->info.seq ||
	    (sw->in_interval && seq < sw->seq))
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent interval %llu out of order",
				     (unsigned long long)seq);
	if (!sw->in_interval || seq != sw->seq) {
		sw->in_interval = true;
		sw->seq = seq;
		sw->end = 0;	/* no extent yet: every extent ends above 0 */
	}
	if (!n)
		return 0;
	extents = malloc(n * sizeof(*extents));
	if (!extents)
		return vss_error_set(h, -ENOMEM, NULL, NULL);
	memcpy(extents, data, n * sizeof(*extents));
	for (i = 0; i < n; i++) {
		const char *problem = check_extent(s, extents[i].offset,
						   extents[i].length, sw->end == 0,
						   sw->end);

		if (problem) {
			free(extents);
			return vss_error_set(h, -EPROTO, NULL,
					     "the module sent a bad extent: %s", problem);
		}
		sw->end = extents[i].offset + extents[i].length;
	}
	write_interval(sw->writer, seq, extents, n);
	free(extents);
	if (sw->writer->err)
		return vss_error_set(h, sw->writer->err, NULL, "cannot write the state file");
	return 0;
}

static int parse_save(struct vss_handle *h, const struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct save_walk *sw = arg;
	int err;

	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, save_reply_policy);
	if (err)
		return err;
	if (tb[VSS_A_CBT_STATE]) {
		if (sw->have_state)
			return vss_error_set(h, -EPROTO, NULL,
					     "the module sent the saved state twice");
		/* From here on the map is ours, whatever happens to the file. */
		sw->have_state = true;
		err = parse_state(h, tb[VSS_A_CBT_STATE], sw);
		if (err)
			return err;
		write_head(sw->writer, sw->saved);
		if (sw->writer->err)
			return vss_error_set(h, sw->writer->err, NULL,
					     "cannot write the state file");
		return 0;
	}
	if (!sw->have_state)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent an interval before the saved state");
	if (!tb[VSS_A_CBT_SEQ])
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent extents without their interval");
	if (!tb[VSS_A_CBT_EXTENTS])
		return 0;
	return save_interval(h, sw, nla_get_u64(tb[VSS_A_CBT_SEQ]), tb[VSS_A_CBT_EXTENTS]);
}

/* @path split into its directory ("." for none) and its last component. */
static int split_path(const char *path, char *dir, size_t dir_len,
		      const char **base)
{
	const char *slash = strrchr(path, '/');

	*base = slash ? slash + 1 : path;
	if (!**base)
		return -EISDIR;
	if (!slash)
		snprintf(dir, dir_len, ".");
	else if (slash == path)
		snprintf(dir, dir_len, "/");
	else if ((size_t)(slash - path) >= dir_len)
		return -ENAMETOOLONG;
	else
		snprintf(dir, dir_len, "%.*s", (int)(slash - path), path);
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* The temporary file, made before the module is asked anything. */
struct temp_file {
	char dir[PATH_MAX];
	char path[PATH_MAX];
	int fd;
};

static int temp_open(struct vss_handle *h, const char *file_path,
		     struct temp_file *t)
{
	const char *base;
	struct stat st;
	int err;

	t->fd = -1;
	if (!file_path || !*file_path)
		return vss_error_set(h, -EINVAL, NULL, "no state file given");
	err = split_path(file_path, t->dir, sizeof(t->dir), &base);
	if (err)
		return vss_error_set(h, err, file_path,
				     err == -EISDIR ? "names a directory, not a file" : NULL);
	if (stat(t->dir, &st) < 0) {
		err = -errno;
		return vss_error_set(h, err, file_path, "directory %s: %s", t->dir,
				     vss_strerror(err));
	}
	if (!S_ISDIR(st.st_mode))
		return vss_error_set(h, -ENOTDIR, file_path, "%s is not a directory", t->dir);
	if (stat(file_path, &st) == 0 && !S_ISREG(st.st_mode))
		return vss_error_set(h, -EEXIST, file_path,
				     "exists and is not a regular file");
	if ((size_t)snprintf(t->path, sizeof(t->path), "%s/.%s.XXXXXX", t->dir, base) >=
	    sizeof(t->path))
		return vss_error_set(h, -ENAMETOOLONG, file_path, NULL);
	t->fd = mkostemp(t->path, O_CLOEXEC);
	if (t->fd < 0) {
		err = -errno;
		return vss_error_set(h, err, file_path, "cannot create a file in %s: %s",
				     t->dir, vss_strerror(err));
	}
	if (fchmod(t->fd, 0600) < 0) {
		err = -errno;
		close(t->fd);
		unlink(t->path);
		t->fd = -1;
		return vss_error_set(h, err, file_path, NULL);
	}
	return 0;
}

static void temp_discard(struct temp_file *t)
{
	if (t->fd < 0)
		return;
	close(t->fd);
	unlink(t->path);
	t->fd = -1;
}

/* fsync, close, rename over @file_path, fsync the directory. */
static int temp_commit(struct temp_file *t, const char *file_path)
{
	int err = 0;

	if (fsync(t->fd) < 0)
		err = -errno;
	if (close(t->fd) < 0 && !err)
		err = -errno;
	t->fd = -1;
	if (!err && rename(t->path, file_path) < 0)
		err = -errno;
	if (err) {
		unlink(t->path);
		return err;
	}
	return sync_dir(t->dir);
}

static int save_common(struct vss_handle *h, const struct vss_device *device,
		       const char *object, const char *file_path,
		       struct vss_cbt_info *out)
{
	struct save_walk sw = { .device = device };
	struct temp_file temp;
	struct vss_request req;
	int err;

	sw.saved = calloc(1, sizeof(*sw.saved));
	sw.writer = calloc(1, sizeof(*sw.writer));
	if (!sw.saved || !sw.writer) {
		err = vss_error_set(h, -ENOMEM, NULL, NULL);
		goto out;
	}
	err = temp_open(h, file_path, &temp);
	if (err)
		goto out;
	sw.writer->fd = temp.fd;
	/* Before the module lets go of the map: nothing to lose yet. */
	vss_cbt_identity_collect(device, &sw.saved->identity);

	err = vss_request_init(&req, h, h->family_id, VSS_CMD_CBT_SAVE,
			       VSS_GENL_VERSION, true);
	if (!err) {
		err = vss_cbt_put_device(&req, device, object);
		if (!err) {
			req.on_reply = parse_save;
			req.arg = &sw;
			err = vss_transact(h, &req);
		} else {
			err = vss_error_set(h, err, NULL, "request too large");
		}
		vss_request_fini(&req);
	} else {
		err = vss_error_set(h, err, NULL, NULL);
	}
	if (!err && !sw.have_state)
		err = vss_error_set(h, -EPROTO, NULL,
				    "the module ended the save without the state");
	if (!err) {
		write_end(sw.writer);
		err = sw.writer->err;
		if (!err)
			err = temp_commit(&temp, file_path);
		if (err)
			vss_error_set(h, err, file_path, "cannot write the state file: %s",
				      vss_strerror(err));
	}
	if (err) {
		temp_discard(&temp);
		/* The module has let go: say what that costs. */
		if (sw.have_state)
			vss_error_append(h, "; tracking has ended and the map is lost: "
					 "the next tracking starts a new generation");
		if (!h->err.object[0])
			snprintf(h->err.object, sizeof(h->err.object), "%s", object);
		goto out;
	}
	if (out)
		*out = sw.saved->info;
out:
	free(sw.writer);
	free(sw.saved);
	return err;
}

VSS_EXPORT int vss_cbt_save(struct vss_handle *h, const char *device_path,
			    const char *file_path)
{
	struct vss_device dev;
	int err;

	err = vss_require_admin(h);
	if (!err)
		err = vss_cbt_lookup(h, device_path, &dev);
	if (!err)
		err = save_common(h, &dev, device_path, file_path, NULL);
	return err;
}

VSS_EXPORT int vss_cbt_save_device(struct vss_handle *h,
				   const struct vss_device *device,
				   const char *file_path, struct vss_cbt_info *saved)
{
	char object[VSS_DEVICE_NAME_MAX + 16];
	int err;

	if (saved)
		memset(saved, 0, sizeof(*saved));
	err = vss_require_admin(h);
	if (err)
		return err;
	if (!device)
		return vss_error_set(h, -EINVAL, NULL, "no device given");
	vss_device_object(device, object, sizeof(object));
	return save_common(h, device, object, file_path, saved);
}

/* ---- reading ---- */

#define READER_BUFSIZE	(64 * 1024)

/* Buffered, checksummed input from the state file. */
struct cbt_reader {
	int fd;
	uint64_t size;			/* of the file */
	uint64_t offset;		/* bytes consumed */
	uint32_t crc;			/* of the bytes consumed */
	size_t pos, len;
	unsigned char buf[READER_BUFSIZE];
};

/* Reads exactly @len bytes, or fails: -EIO, or -EBADMSG past the end. */
static int reader_get(struct cbt_reader *r, void *out, size_t len)
{
	unsigned char *p = out;

	if (len > r->size - r->offset)
		return -EBADMSG;
	while (len) {
		size_t n;

		if (r->pos == r->len) {
			ssize_t got = read(r->fd, r->buf, READER_BUFSIZE);

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -errno;
			if (got == 0)
				return -EBADMSG;
			r->pos = 0;
			r->len = (size_t)got;
		}
		n = r->len - r->pos;
		if (n > len)
			n = len;
		memcpy(p, r->buf + r->pos, n);
		r->crc = vss_crc32c(r->crc, p, n);
		r->pos += n;
		r->offset += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int reader_skip_padding(struct cbt_reader *r, uint32_t len)
{
	unsigned char pad[8];
	size_t n = len % 8 ? 8 - len % 8 : 0, i;
	int err = reader_get(r, pad, n);

	if (err)
		return err;
	for (i = 0; i < n; i++)
		if (pad[i])
			return -EBADMSG;
	return 0;
}

/*
 * Called with up to RESTORE_EXTENTS_PER_REQUEST extents of one interval,
 * in order; an interval may come in several calls.
 */
typedef int (*interval_fn)(struct vss_handle *h, uint64_t seq,
			   const struct vss_cbt_extent *extents, size_t n,
			   void *arg);

/* Where a file check failed: the error state names the file. */
static int bad_file(struct vss_handle *h, const char *path, const char *what,
		    uint64_t offset)
{
	return vss_error_set(h, -EBADMSG, path,
			     "not a valid changed-block state file: %s (at byte %llu)",
			     what, (unsigned long long)offset);
}

static int read_failed(struct vss_handle *h, const char *path, int err,
		       uint64_t offset)
{
	if (err == -EBADMSG)
		return bad_file(h, path, "truncated", offset);
	return vss_error_set(h, err, path, "cannot read: %s", vss_strerror(err));
}

/*
 * The end record sits at a fixed distance from the end, and the CRC is
 * the last four bytes: checked first over the whole file, so that any
 * corruption reads as such rather than as whatever it broke.
 */
static int check_checksum(struct vss_handle *h, int fd, const char *path,
			  uint64_t size)
{
	struct cbt_reader *r;
	unsigned char tail[CBT_END_RECORD_LEN];
	uint64_t left;
	int err = 0;

	if (size < CBT_PREAMBLE_LEN + CBT_END_RECORD_LEN)
		return bad_file(h, path, "truncated", size);
	if (pread(fd, tail, sizeof(tail), (off_t)(size - sizeof(tail))) !=
	    (ssize_t)sizeof(tail))
		return bad_file(h, path, "truncated", size);
	if (get_le32(tail) != CBT_REC_END || get_le32(tail + 4) != CBT_END_LEN)
		return bad_file(h, path, "truncated: no end record", size);
	r = calloc(1, sizeof(*r));
	if (!r)
		return vss_error_set(h, -ENOMEM, NULL, NULL);
	r->fd = fd;
	r->size = size;
	if (lseek(fd, 0, SEEK_SET) < 0)
		err = -errno;
	for (left = size - 4; !err && left;) {
		unsigned char chunk[4096];
		size_t n = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);

		err = reader_get(r, chunk, n);
		left -= n;
	}
	if (!err && r->crc != get_le32(tail + CBT_END_RECORD_LEN - 4))
		err = bad_file(h, path, "checksum mismatch", size - 4);
	else if (err)
		err = read_failed(h, path, err, r->offset);
	free(r);
	return err;
}

static int parse_state_record(struct cbt_saved *s, const unsigned char *st)
{
	memcpy(s->info.generation.bytes, st, VSS_ID_LEN);
	memcpy(s->boot_id.bytes, st + 16, VSS_ID_LEN);
	s->info.seq = get_le64(st + 32);
	s->info.oldest_seq = get_le64(st + 40);
	s->info.size = get_le64(st + 48);
	s->info.started_ns = get_le64(st + 56);
	s->diskseq = get_le64(st + 64);
	s->write_ios = get_le64(st + 72);
	s->direct_write_ios = get_le64(st + 80);
	s->saved_ns = get_le64(st + 88);
	s->info.block_size = get_le32(st + 96);
	s->save_flags = get_le32(st + 100);
	s->present = get_le32(st + 104);
	if ((s->present & ~STATE_HAS_ALL) || get_le32(st + 108))
		return -EBADMSG;
	return 0;
}

static bool terminated_text(const unsigned char *p, size_t len, size_t max)
{
	return len >= 2 && len <= max && p[len - 1] == '\0' &&
	       strlen((const char *)p) == len - 1;
}

/* Where parsing is in the file's fixed order of records. */
enum parse_stage { WANT_STATE, WANT_DEVICE, IN_BODY, DONE };

struct parse {
	struct vss_handle *h;
	const char *path;
	struct cbt_reader *r;
	struct cbt_saved *s;
	interval_fn fn;
	void *arg;
	enum parse_stage stage;
	uint64_t interval_records;
	uint64_t extents;
	bool in_interval;
	uint64_t seq;			/* of the last interval */
	uint64_t end;			/* of its last extent */
	/* Extents of interval @seq not handed to @fn yet: records are as
	 * small as the module's messages were, requests need not be. */
	struct vss_cbt_extent *batch;
	size_t batch_used;
};

static int flush_batch(struct parse *p)
{
	int err = 0;

	if (p->batch_used && p->fn)
		err = p->fn(p->h, p->seq, p->batch, p->batch_used, p->arg);
	p->batch_used = 0;
	return err;
}

static int parse_small_record(struct parse *p, uint32_t type, uint32_t len,
			      uint64_t at)
{
	unsigned char payload[VSS_CBT_IDENTITY_MAX];
	int err;

	if (type == CBT_REC_STATE) {
		if (p->stage != WANT_STATE || len != CBT_STATE_LEN)
			return bad_file(p->h, p->path, "bad state record", at);
	} else if (type == CBT_REC_DEVICE) {
		if (p->stage != WANT_DEVICE || len < 10 || len > 8 + VSS_DEVICE_NAME_MAX)
			return bad_file(p->h, p->path, "bad device record", at);
	} else if (type >= VSS_CBT_ID_BY_ID && type <= VSS_CBT_ID_HARDWARE) {
		if (p->stage != IN_BODY || p->in_interval || len > VSS_CBT_IDENTITY_MAX)
			return bad_file(p->h, p->path, "bad identity record", at);
	} else {
		return bad_file(p->h, p->path, "unknown record type", at);
	}
	err = reader_get(p->r, payload, len);
	if (!err)
		err = reader_skip_padding(p->r, len);
	if (err)
		return err == -EBADMSG ? bad_file(p->h, p->path, "truncated or bad padding", at) :
					 read_failed(p->h, p->path, err, at);

	if (type == CBT_REC_STATE) {
		if (parse_state_record(p->s, payload))
			return bad_file(p->h, p->path, "bad state record", at);
		p->stage = WANT_DEVICE;
	} else if (type == CBT_REC_DEVICE) {
		if (!terminated_text(payload + 8, len - 8, VSS_DEVICE_NAME_MAX))
			return bad_file(p->h, p->path, "bad device name", at);
		p->s->info.device.major = get_le32(payload);
		p->s->info.device.minor = get_le32(payload + 4);
		memcpy(p->s->info.device.name, payload + 8, len - 8);
		p->stage = IN_BODY;
		{
			const char *problem = check_saved_state(p->s);

			if (problem)
				return bad_file(p->h, p->path, problem, at);
		}
	} else {
		struct vss_cbt_identity *id = &p->s->identity;

		if (!terminated_text(payload, len, VSS_CBT_IDENTITY_MAX) ||
		    id->count == VSS_CBT_IDENTITY_COUNT)
			return bad_file(p->h, p->path, "bad identity record", at);
		id->entries[id->count].kind = type;
		memcpy(id->entries[id->count].text, payload, len);
		id->count++;
	}
	return 0;
}

static int parse_interval_record(struct parse *p, uint32_t len, uint64_t at)
{
	unsigned char item[CBT_EXTENT_LEN];
	uint64_t seq, n, i;
	int err;

	if (p->stage != IN_BODY || len < 8 + CBT_EXTENT_LEN || (len - 8) % CBT_EXTENT_LEN)
		return bad_file(p->h, p->path, "bad interval record", at);
	err = reader_get(p->r, item, 8);
	if (err)
		return read_failed(p->h, p->path, err, at);
	seq = get_le64(item);
	if (seq < p->s->info.oldest_seq || seq > p->s->info.seq ||
	    (p->in_interval && seq < p->seq))
		return bad_file(p->h, p->path, "interval out of range or out of order", at);
	if (!p->in_interval || seq != p->seq) {
		err = flush_batch(p);
		if (err)
			return err;
		p->in_interval = true;
		p->seq = seq;
		p->end = 0;	/* no extent yet: every extent ends above 0 */
	}
	n = (len - 8) / CBT_EXTENT_LEN;
	for (i = 0; i < n; i++) {
		const char *problem;
		uint64_t offset, length;

		err = reader_get(p->r, item, sizeof(item));
		if (err)
			return read_failed(p->h, p->path, err, p->r->offset);
		offset = get_le64(item);
		length = get_le64(item + 8);
		problem = check_extent(p->s, offset, length, p->end == 0, p->end);
		if (problem)
			return bad_file(p->h, p->path, problem, p->r->offset - sizeof(item));
		p->end = offset + length;
		p->batch[p->batch_used].offset = offset;
		p->batch[p->batch_used].length = length;
		if (++p->batch_used == RESTORE_EXTENTS_PER_REQUEST) {
			err = flush_batch(p);
			if (err)
				return err;
		}
	}
	p->interval_records++;
	p->extents += n;
	return 0;
}

static int parse_end_record(struct parse *p, uint32_t len, uint64_t at)
{
	unsigned char end[CBT_END_LEN];
	uint32_t crc_before;
	int err;

	if (p->stage != IN_BODY || len != CBT_END_LEN)
		return bad_file(p->h, p->path, "bad end record", at);
	err = reader_get(p->r, end, 20);
	if (err)
		return read_failed(p->h, p->path, err, at);
	crc_before = p->r->crc;
	err = reader_get(p->r, end + 20, 4);
	if (err)
		return read_failed(p->h, p->path, err, at);
	if (get_le64(end) != p->interval_records || get_le64(end + 8) != p->extents ||
	    get_le32(end + 16))
		return bad_file(p->h, p->path, "record counts do not add up", at);
	if (get_le32(end + 20) != crc_before)
		return bad_file(p->h, p->path, "checksum mismatch", at + 28);
	if (p->r->offset != p->r->size)
		return bad_file(p->h, p->path, "data after the end record", p->r->offset);
	p->stage = DONE;
	return flush_batch(p);
}

/*
 * Reads the whole file from the start, checking everything, handing the
 * extents to @fn (if not NULL) in batches. The checksum is computed on the
 * way too, so that a file changed since check_checksum() is caught.
 */
static int parse_file(struct vss_handle *h, int fd, const char *path,
		      uint64_t size, struct cbt_saved *s, interval_fn fn, void *arg)
{
	struct parse p = { .h = h, .path = path, .s = s, .fn = fn, .arg = arg };
	unsigned char pre[CBT_PREAMBLE_LEN];
	int err;

	memset(s, 0, sizeof(*s));
	p.r = calloc(1, sizeof(*p.r));
	p.batch = calloc(RESTORE_EXTENTS_PER_REQUEST, sizeof(*p.batch));
	if (!p.r || !p.batch) {
		free(p.r);
		free(p.batch);
		return vss_error_set(h, -ENOMEM, NULL, NULL);
	}
	p.r->fd = fd;
	p.r->size = size;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		err = vss_error_set(h, -errno, path, NULL);
		goto out;
	}
	err = reader_get(p.r, pre, sizeof(pre));
	if (err) {
		err = read_failed(h, path, err, 0);
		goto out;
	}
	if (memcmp(pre, CBT_FILE_MAGIC, CBT_FILE_MAGIC_LEN)) {
		err = bad_file(h, path, "bad magic", 0);
		goto out;
	}
	if (get_le32(pre + 8) != CBT_FILE_VERSION) {
		err = vss_error_set(h, -EBADMSG, path,
				    "state file format version %u is not supported (this libvss reads version %d)",
				    get_le32(pre + 8), CBT_FILE_VERSION);
		goto out;
	}
	if (get_le32(pre + 12)) {
		err = bad_file(h, path, "bad preamble", 8);
		goto out;
	}
	while (!err && p.stage != DONE) {
		unsigned char header[CBT_RECORD_HEADER_LEN];
		uint64_t at = p.r->offset;
		uint32_t type, len;

		err = reader_get(p.r, header, sizeof(header));
		if (err) {
			err = read_failed(h, path, err, at);
			break;
		}
		type = get_le32(header);
		len = get_le32(header + 4);
		if (len > CBT_RECORD_MAX || len > size - p.r->offset) {
			err = bad_file(h, path, "record longer than the file", at);
			break;
		}
		if (p.stage == WANT_STATE && type != CBT_REC_STATE) {
			err = bad_file(h, path, "no state record first", at);
			break;
		}
		if (type == CBT_REC_INTERVAL)
			err = parse_interval_record(&p, len, at);
		else if (type == CBT_REC_END)
			err = parse_end_record(&p, len, at);
		else
			err = parse_small_record(&p, type, len, at);
	}
out:
	free(p.batch);
	free(p.r);
	return err;
}

/* Opens, checks and reads the head of a state file. */
static int open_state_file(struct vss_handle *h, const char *path, int *fd_out,
			   uint64_t *size_out, struct cbt_saved *s)
{
	struct stat st;
	int fd, err;

	if (!path || !*path)
		return vss_error_set(h, -EINVAL, NULL, "no state file given");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		return vss_error_set(h, err, path, err == -ENOENT ?
				     "no such file" : NULL);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vss_error_set(h, -EINVAL, path, "not a regular file");
	}
	err = check_checksum(h, fd, path, (uint64_t)st.st_size);
	if (!err)
		err = parse_file(h, fd, path, (uint64_t)st.st_size, s, NULL, NULL);
	if (err) {
		close(fd);
		return err;
	}
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return 0;
}

static bool same_boot(const struct cbt_saved *s)
{
	struct vss_id now;

	return vss_read_boot_id(&now) == 0 && vss_id_equal(&now, &s->boot_id);
}

VSS_EXPORT int vss_cbt_read_state_file(struct vss_handle *h, const char *file_path,
				       struct vss_cbt_state_file *out)
{
	struct cbt_saved *saved;
	uint64_t size;
	int fd, err;

	memset(out, 0, sizeof(*out));
	vss_error_clear(h);
	saved = calloc(1, sizeof(*saved));
	if (!saved)
		return vss_error_set(h, -ENOMEM, NULL, NULL);
	err = open_state_file(h, file_path, &fd, &size, saved);
	if (!err) {
		close(fd);
		out->saved = saved->info;
		out->boot_id = saved->boot_id;
		out->saved_ns = saved->saved_ns;
		out->this_boot = same_boot(saved);
	}
	free(saved);
	return err;
}

/* ---- finding the device ---- */

struct restore_target {
	struct vss_device dev;
	char object[VSS_PATH_MAX];	/* the device, in the caller's words */
	bool proven;			/* the file's device, beyond doubt */
	char why_unproven[VSS_REASON_MAX];
};

static bool same_device(const struct vss_device *a, const struct vss_device *b)
{
	return a->major == b->major && a->minor == b->minor;
}

static const char *identity_kind_name(uint32_t kind)
{
	switch (kind) {
	case VSS_CBT_ID_BY_ID:
		return "by-id name";
	case VSS_CBT_ID_PARTUUID:
		return "PARTUUID";
	case VSS_CBT_ID_DM_UUID:
		return "device-mapper uuid";
	default:
		return "hardware id";
	}
}

/*
 * The device the file's stable names agree on now. -ENOENT when none
 * resolves; -EINVAL, explained, when they name different devices.
 */
static int resolve_stable_names(struct vss_handle *h, const char *path,
				const struct cbt_saved *s, struct vss_device *out,
				const struct vss_cbt_identity_entry **by)
{
	const struct vss_cbt_identity_entry *first = NULL;
	size_t i;

	for (i = 0; i < s->identity.count; i++) {
		const struct vss_cbt_identity_entry *e = &s->identity.entries[i];
		struct vss_device dev;

		if (vss_cbt_identity_resolve(e, &dev))
			continue;
		if (!first) {
			*out = dev;
			first = e;
		} else if (!same_device(out, &dev)) {
			return vss_error_set(h, -EINVAL, path,
					     "the saved device's stable names disagree: %s %s is %u:%u, %s %s is %u:%u",
					     identity_kind_name(first->kind), first->text,
					     out->major, out->minor,
					     identity_kind_name(e->kind), e->text,
					     dev.major, dev.minor);
		}
	}
	if (!first)
		return -ENOENT;
	*by = first;
	return 0;
}

static void device_text(const struct vss_device *dev, char *buf, size_t len)
{
	char name[VSS_DEVICE_NAME_MAX];

	vss_sysfs_name(dev->major, dev->minor, name, sizeof(name));
	if (name[0])
		snprintf(buf, len, "/dev/%s", name);
	else
		snprintf(buf, len, "%u:%u", dev->major, dev->minor);
}

static int find_given_device(struct vss_handle *h, const char *file_path,
			     const struct cbt_saved *s, const char *device_path,
			     struct restore_target *t)
{
	const struct vss_device *saved = &s->info.device;
	const struct vss_cbt_identity_entry *by;
	struct vss_device stable;
	int err;

	err = vss_cbt_lookup(h, device_path, &t->dev);
	if (err)
		return err;
	snprintf(t->object, sizeof(t->object), "%s", device_path);
	err = resolve_stable_names(h, file_path, s, &stable, &by);
	if (err == -EINVAL)
		return err;
	if (!err) {
		if (!same_device(&stable, &t->dev))
			return vss_error_set(h, -EINVAL, device_path,
					     "%s was saved from another device: its %s %s is %u:%u now",
					     file_path, identity_kind_name(by->kind),
					     by->text, stable.major, stable.minor);
		t->proven = true;
		return 0;
	}
	if (same_boot(s)) {
		if (!same_device(saved, &t->dev))
			return vss_error_set(h, -EINVAL, device_path,
					     "%s was saved from %s (%u:%u) in this boot",
					     file_path, saved->name, saved->major,
					     saved->minor);
		t->proven = true;
		return 0;
	}
	snprintf(t->why_unproven, sizeof(t->why_unproven),
		 "saved in another boot, and no stable name proves that %s is the saved %s",
		 device_path, saved->name);
	return 0;
}

static int find_saved_device(struct vss_handle *h, const char *file_path,
			     const struct cbt_saved *s, struct restore_target *t)
{
	const struct vss_device *saved = &s->info.device;
	const struct vss_cbt_identity_entry *by;
	char name[VSS_DEVICE_NAME_MAX];
	int err;

	err = resolve_stable_names(h, file_path, s, &t->dev, &by);
	if (err == -EINVAL)
		return err;
	if (!err) {
		t->proven = true;
		device_text(&t->dev, t->object, sizeof(t->object));
		return 0;
	}
	if (same_boot(s)) {
		/* Within a boot a number names one device until it goes away. */
		vss_sysfs_name(saved->major, saved->minor, name, sizeof(name));
		if (strcmp(name, saved->name))
			return vss_error_set(h, -ENODEV, file_path,
					     "the saved device %s (%u:%u) is gone",
					     saved->name, saved->major, saved->minor);
		t->dev = *saved;
		t->proven = true;
		snprintf(t->object, sizeof(t->object), "/dev/%s", saved->name);
		return 0;
	}
	if (s->identity.count)
		return vss_error_set(h, -ENODEV, file_path,
				     "the saved device %s is not present: none of its %zu stable names exists",
				     saved->name, s->identity.count);
	/*
	 * Nothing tells this boot's device of that name from the saved one:
	 * it may only start afresh, which needs no proof.
	 */
	if (vss_sysfs_device_by_name(saved->name, &t->dev))
		return vss_error_set(h, -ENODEV, file_path,
				     "the saved device %s is not present", saved->name);
	snprintf(t->object, sizeof(t->object), "/dev/%s", saved->name);
	snprintf(t->why_unproven, sizeof(t->why_unproven),
		 "saved in another boot, and %s has no stable name to prove it is the same device",
		 saved->name);
	return 0;
}

/* ---- restoring ---- */

static const struct nla_policy restore_reply_policy[VSS_A_MAX + 1] = {
	[VSS_A_CBT] = { .type = NLA_NESTED },
	[VSS_A_CBT_VERDICT] = { .type = NLA_U32 },
	[VSS_A_REASON] = { .type = NLA_STRING },
};

struct restore_reply {
	struct vss_cbt_restore_result *out;
	bool seen;
};

static int parse_restore_reply(struct vss_handle *h, const struct nlmsghdr *nlh,
			       void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct restore_reply *reply = arg;
	int err;

	(void)h;
	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, restore_reply_policy);
	if (err)
		return err;
	if (!tb[VSS_A_CBT] || !tb[VSS_A_CBT_VERDICT])
		return -EPROTO;
	err = vss_parse_cbt(tb[VSS_A_CBT], &reply->out->info);
	if (err)
		return err;
	reply->out->verdict = nla_get_u32(tb[VSS_A_CBT_VERDICT]);
	if (reply->out->verdict != VSS_CBT_VERDICT_CONTINUED &&
	    reply->out->verdict != VSS_CBT_VERDICT_NEW_GENERATION)
		return -EPROTO;
	reply->out->reason[0] = '\0';
	if (tb[VSS_A_REASON])
		nla_strlcpy(reply->out->reason, tb[VSS_A_REASON],
			    sizeof(reply->out->reason));
	reply->seen = true;
	return 0;
}

static int put_state(struct vss_request *req, const struct cbt_saved *s,
		     const char *file_path)
{
	struct nl_msg *msg = req->msg;
	struct nlattr *nest = nla_nest_start(msg, VSS_A_CBT_STATE);
	const struct vss_cbt_info *i = &s->info;

	if (!nest ||
	    vss_put_device(msg, VSS_A_DEVICE, i->device.major, i->device.minor, NULL) ||
	    nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, i->generation.bytes) < 0 ||
	    nla_put_u64(msg, VSS_A_CBT_SEQ, i->seq) < 0 ||
	    nla_put_u64(msg, VSS_A_CBT_OLDEST_SEQ, i->oldest_seq) < 0 ||
	    nla_put_u32(msg, VSS_A_CBT_BLOCK_SIZE, i->block_size) < 0 ||
	    nla_put_u64(msg, VSS_A_CBT_SIZE, i->size) < 0 ||
	    nla_put(msg, VSS_A_CBT_BOOT_ID, VSS_ID_LEN, s->boot_id.bytes) < 0 ||
	    ((s->present & STATE_HAS_STARTED) &&
	     nla_put_u64(msg, VSS_A_CBT_STARTED_NS, i->started_ns) < 0) ||
	    ((s->present & STATE_HAS_DISKSEQ) &&
	     nla_put_u64(msg, VSS_A_CBT_DISKSEQ, s->diskseq) < 0) ||
	    ((s->present & STATE_HAS_WRITE_IOS) &&
	     nla_put_u64(msg, VSS_A_CBT_WRITE_IOS, s->write_ios) < 0) ||
	    ((s->present & STATE_HAS_DIRECT_IOS) &&
	     nla_put_u64(msg, VSS_A_CBT_DIRECT_WRITE_IOS, s->direct_write_ios) < 0) ||
	    ((s->present & STATE_HAS_SAVE_FLAGS) &&
	     nla_put_u32(msg, VSS_A_CBT_SAVE_FLAGS, s->save_flags) < 0))
		return -EMSGSIZE;
	nla_nest_end(msg, nest);
	/* Whatever the module finds wrong in the state, the file is to blame. */
	return vss_request_add_span(req, nest, file_path);
}

/* One step of VSS_CMD_CBT_RESTORE with @flags and whatever @fill adds. */
static int restore_step(struct vss_handle *h, const struct restore_target *t,
			uint32_t flags,
			int (*fill)(struct vss_request *req, const void *arg),
			const void *fill_arg, struct vss_cbt_restore_result *out)
{
	struct restore_reply reply = { .out = out };
	struct vss_request req;
	int err;

	err = vss_request_init(&req, h, h->family_id, VSS_CMD_CBT_RESTORE,
			       VSS_GENL_VERSION, false);
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	err = vss_cbt_put_device(&req, &t->dev, t->object);
	if (!err && flags && nla_put_u32(req.msg, VSS_A_FLAGS, flags) < 0)
		err = -EMSGSIZE;
	if (!err && fill)
		err = fill(&req, fill_arg);
	if (err) {
		vss_request_fini(&req);
		return vss_error_set(h, err, NULL, "request too large");
	}
	if (out) {
		req.on_reply = parse_restore_reply;
		req.arg = &reply;
	}
	err = vss_transact(h, &req);
	vss_request_fini(&req);
	if (!err && out && !reply.seen)
		err = vss_error_set(h, -EPROTO, NULL,
				    "the module did not say how the restore went");
	if (err && !h->err.object[0])
		snprintf(h->err.object, sizeof(h->err.object), "%s", t->object);
	return err;
}

struct begin_args {
	const struct cbt_saved *saved;
	const char *file_path;
};

static int fill_begin(struct vss_request *req, const void *arg)
{
	const struct begin_args *b = arg;

	return put_state(req, b->saved, b->file_path);
}

struct interval_args {
	uint64_t seq;
	const struct vss_cbt_extent *extents;
	size_t n;
};

static int fill_interval(struct vss_request *req, const void *arg)
{
	const struct interval_args *a = arg;

	if (nla_put_u64(req->msg, VSS_A_CBT_SEQ, a->seq) < 0 ||
	    nla_put(req->msg, VSS_A_CBT_EXTENTS, (int)(a->n * sizeof(*a->extents)),
		    a->extents) < 0)
		return -EMSGSIZE;
	return 0;
}

struct send_state {
	const struct restore_target *target;
	int refused;			/* the module's error for an interval */
};

static int send_interval(struct vss_handle *h, uint64_t seq,
			 const struct vss_cbt_extent *extents, size_t n, void *arg)
{
	const struct interval_args args = { .seq = seq, .extents = extents, .n = n };
	struct send_state *send = arg;
	int err = restore_step(h, send->target, 0, fill_interval, &args, NULL);

	if (err)
		send->refused = err;
	return err;
}

/*
 * Ends a restore that cannot be completed, keeping the failure reported.
 * COMMIT only when the module has said it dropped the saved map (EINVAL:
 * "the new generation stays"); after anything else part of the map may
 * be in, and a COMMIT could continue the saved generation with a short
 * map, so the device is untracked instead.
 */
static void end_restore(struct vss_handle *h, const struct restore_target *t,
			bool module_dropped_map)
{
	struct vss_error_state failure = h->err;
	struct vss_cbt_restore_result *scratch = malloc(sizeof(*scratch));
	bool committed = false;

	if (module_dropped_map && scratch)
		committed = !restore_step(h, t, VSS_CBT_RESTORE_COMMIT, NULL, NULL,
					  scratch) &&
			    scratch->verdict == VSS_CBT_VERDICT_NEW_GENERATION;
	if (!committed)
		vss_cbt_simple_request(h, VSS_CMD_UNTRACK, &t->dev, t->object, NULL);
	free(scratch);
	h->err = failure;
	vss_error_append(h, committed ?
			 "; the saved map was not applied: tracking goes on under a new generation" :
			 "; the saved map was not applied and tracking of the device ended: "
			 "the next tracking starts a new generation");
}

/* The file is spent once the module took its state: never apply it twice. */
static int consume_file(struct vss_handle *h, const char *file_path)
{
	char dir[PATH_MAX];
	const char *base;
	int err = 0;

	if (unlink(file_path) < 0)
		err = -errno;
	else if (!split_path(file_path, dir, sizeof(dir), &base))
		err = sync_dir(dir);
	if (err)
		return vss_error_set(h, err, file_path,
				     "cannot remove the used state file (%s): remove it by "
				     "hand, it must never be restored", vss_strerror(err));
	return 0;
}

/* Tracking afresh, when the saved map cannot be tied to the device. */
static int restore_afresh(struct vss_handle *h, const char *file_path,
			  const struct restore_target *t,
			  struct vss_cbt_restore_result *out)
{
	int err = vss_cbt_simple_request(h, VSS_CMD_TRACK, &t->dev, t->object,
					 &out->info);

	if (err)
		return err;
	out->verdict = VSS_CBT_VERDICT_NEW_GENERATION;
	snprintf(out->reason, sizeof(out->reason), "%s", t->why_unproven);
	return consume_file(h, file_path);
}

static int restore_saved(struct vss_handle *h, int fd, uint64_t size,
			 const char *file_path, const struct cbt_saved *saved,
			 const struct restore_target *t,
			 struct vss_cbt_restore_result *out)
{
	const struct begin_args begin = { .saved = saved, .file_path = file_path };
	struct vss_cbt_restore_result begun;
	struct cbt_saved *again;
	int err;

	err = restore_step(h, t, VSS_CBT_RESTORE_BEGIN, fill_begin, &begin, out);
	if (err)
		return err;
	err = consume_file(h, file_path);
	if (err) {
		end_restore(h, t, false);
		return err;
	}
	begun = *out;
	if (out->verdict == VSS_CBT_VERDICT_CONTINUED) {
		struct send_state send = { .target = t };

		again = malloc(sizeof(*again));
		err = again ? parse_file(h, fd, file_path, size, again, send_interval,
					 &send) :
			      vss_error_set(h, -ENOMEM, NULL, NULL);
		if (!err && memcmp(&again->info, &saved->info, sizeof(saved->info)))
			err = vss_error_set(h, -EBADMSG, file_path,
					    "the state file changed while it was being restored");
		free(again);
		if (err) {
			end_restore(h, t, send.refused == -EINVAL);
			return err;
		}
	}
	err = restore_step(h, t, VSS_CBT_RESTORE_COMMIT, NULL, NULL, out);
	/* After a new generation there may be nothing left to commit. */
	if (err == -ENOENT && begun.verdict == VSS_CBT_VERDICT_NEW_GENERATION) {
		*out = begun;
		vss_error_clear(h);
		return 0;
	}
	if (!err && out->verdict == VSS_CBT_VERDICT_NEW_GENERATION && !out->reason[0])
		snprintf(out->reason, sizeof(out->reason), "%s", begun.reason);
	return err;
}

VSS_EXPORT int vss_cbt_restore(struct vss_handle *h, const char *file_path,
			       const char *device_path,
			       struct vss_cbt_restore_result *out)
{
	struct restore_target *target = NULL;
	struct cbt_saved *saved;
	uint64_t size = 0;
	int fd = -1, err;

	memset(out, 0, sizeof(*out));
	err = vss_require_admin(h);
	if (err)
		return err;
	saved = calloc(1, sizeof(*saved));
	target = calloc(1, sizeof(*target));
	if (!saved || !target) {
		err = vss_error_set(h, -ENOMEM, NULL, NULL);
		goto out;
	}
	err = open_state_file(h, file_path, &fd, &size, saved);
	if (err)
		goto out;
	out->saved = saved->info;
	if (device_path)
		err = find_given_device(h, file_path, saved, device_path, target);
	else
		err = find_saved_device(h, file_path, saved, target);
	if (err)
		goto out;
	snprintf(out->device_path, sizeof(out->device_path), "%s", target->object);
	if (target->proven)
		err = restore_saved(h, fd, size, file_path, saved, target, out);
	else
		err = restore_afresh(h, file_path, target, out);
out:
	if (err) {
		struct vss_cbt_info kept = out->saved;

		memset(out, 0, sizeof(*out));
		out->saved = kept;
	}
	if (fd >= 0)
		close(fd);
	free(target);
	free(saved);
	return err;
}
