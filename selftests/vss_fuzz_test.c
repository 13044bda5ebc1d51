// SPDX-License-Identifier: GPL-2.0
/*
 * Netlink fuzzing: random and mutated messages to the "vss" family while
 * snapshots exist and a writer runs on their origins. Then every snapshot
 * taken at a known moment must still read as its origin did then, nothing
 * may be left behind once everything is deleted, and the module must
 * unload.
 *
 * The messages come from one seed (printed; VSS_FUZZ_SEED=N or the first
 * argument repeats it) and number VSS_FUZZ_COUNT (default 100000 as root,
 * plus a quarter of that unprivileged). Kinds of message: a valid request
 * of every command, mutated (bytes flipped, lengths changed, attributes
 * dropped, duplicated or added); random attributes, flat or nested up to
 * four deep; truncated messages and lengths that claim more than was sent;
 * random headers (command, version, flags, several messages in one send);
 * dumps stopped part way by closing the socket or by asking for another.
 *
 * Disks (VSS_DISKS): A and B are the origins, C and D the block stores of
 * the two known sets, E a device that is only tracked (the fuzzer may
 * track, save and restore it). Snapshots the fuzzer itself creates go to
 * tmpfile stores in /tmp and are deleted again by it.
 */
#include "vss_nl.h"
#include "vss_util.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GENL_HDR (NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct genlmsghdr)))
/* The writer stays in the first WRITE_SPAN bytes of each origin. */
#define WRITE_SPAN (8u << 20)
/*
 * Sets the fuzzer keeps before deleting the oldest. Every set made is
 * recorded (a batch can make several): a set forgotten would never be
 * deleted, and their tmpfs stores filled the guest's memory (OOM kill).
 */
#define MAX_OWN_SETS 6
#define OWN_SETS_ROOM 64

static unsigned int tests_run;
static unsigned int tests_failed;

static void __attribute__((format(printf, 2, 3)))
tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %u - ", ok ? "" : "not ", ++tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		tests_failed++;
}

/* What the fuzzing processes report back, in shared memory. */
struct fuzz_stats {
	unsigned long sent;		/* messages */
	unsigned long sends;		/* sendto() calls */
	unsigned long acked_ok;		/* acks with error 0 */
	unsigned long errors;		/* acks with an error */
	unsigned long data;		/* data messages received */
	unsigned long dumps_cut;	/* dumps abandoned part way */
	unsigned long sets_made;	/* CREATE_SET that succeeded */
	unsigned long sets_deleted;
	unsigned long unpriv_success;	/* mutating commands that worked: bug */
	unsigned long send_errors;	/* sendto() failed (not ENOBUFS) */
	int send_errno;			/* the first such failure */
	char unpriv_what[128];
	unsigned long writes;		/* writer */
	unsigned long write_errors;
	char write_err[128];
};

static struct fuzz_stats *stats;
static volatile sig_atomic_t stop_writer;

/* --- the environment ------------------------------------------------------ */

struct dev {
	const char *path;
	dev_t rdev;
	uint64_t sectors;
};

static struct dev devs[5];		/* A B C D E */
static uint8_t cbt_gen_a[VSS_ID_LEN];	/* A's generation, for CBT_CHANGES */

static int dev_open(struct dev *d, const char *path)
{
	struct stat st;
	int fd;

	d->path = path;
	if (!path || stat(path, &st))
		return -1;
	d->rdev = st.st_rdev;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	d->sectors = dev_sectors(fd);
	close(fd);
	return 0;
}

/* --- random numbers -------------------------------------------------------- */

static uint64_t rng;

static uint64_t r64(void)
{
	return rnd(&rng);
}

static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(r64() % n) : 0;
}

static bool chance(unsigned int one_in)
{
	return below(one_in) == 0;
}

/* --- building messages ------------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
};

static void put_bytes(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap)
		len = b->cap - b->len;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_pad(struct buf *b)
{
	static const char zero[4];

	put_bytes(b, zero, NLA_ALIGN(b->len) - b->len);
}

static size_t attr_start(struct buf *b, uint16_t type)
{
	struct nlattr a = { .nla_type = type, .nla_len = NLA_HDRLEN };
	size_t at;

	put_pad(b);
	at = b->len;
	put_bytes(b, &a, sizeof(a));
	return at;
}

static void attr_end(struct buf *b, size_t at)
{
	struct nlattr *a = (struct nlattr *)(b->p + at);

	if (at + NLA_HDRLEN <= b->len)
		a->nla_len = b->len - at > 0xffff ? 0xffff : b->len - at;
}

static void attr(struct buf *b, uint16_t type, const void *data, size_t len)
{
	size_t at = attr_start(b, type);

	put_bytes(b, data, len);
	attr_end(b, at);
	put_pad(b);
}

static void attr_u32(struct buf *b, uint16_t type, uint32_t v)
{
	attr(b, type, &v, sizeof(v));
}

static void attr_u64(struct buf *b, uint16_t type, uint64_t v)
{
	attr(b, type, &v, sizeof(v));
}

static void attr_str(struct buf *b, uint16_t type, const char *s)
{
	attr(b, type, s, strlen(s) + 1);
}

static void attr_dev(struct buf *b, uint16_t type, dev_t dev)
{
	size_t at = attr_start(b, type | NLA_F_NESTED);

	attr_u32(b, VSS_A_DEV_MAJOR, major(dev));
	attr_u32(b, VSS_A_DEV_MINOR, minor(dev));
	attr_end(b, at);
}

/* An interesting number of @bytes bytes. */
static uint64_t odd_value(void)
{
	static const uint64_t values[] = {
		0, 1, 2, 3, 4095, 4096, 4097, 65536, 1 << 20, (1 << 20) + 1,
		60000, 60001, 0x7fffffff, 0x80000000, 0xffffffff,
		0x100000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
		~0ULL, ~0ULL - 1, 512, 1023, 255, 256,
	};

	if (chance(3))
		return r64() >> below(64);
	return values[below(sizeof(values) / sizeof(values[0]))];
}

static dev_t some_dev(void)
{
	switch (below(8)) {
	case 0: return makedev(below(300), below(300));
	case 1: return makedev(1, 3);		/* /dev/null: a char device */
	case 2: return makedev(7, below(8));	/* loop, maybe absent */
	case 3: return makedev(0, 0);
	default: return devs[below(5)].rdev;
	}
}

static const char *some_path(void)
{
	static const char *const paths[] = {
		"/tmp", "/tmp/", "/tmp/vss-fuzz-file", "/", "/dev/null",
		"relative", "", "/nonexistent/dir", "/proc/self/mem",
		"/sys/kernel", "/dev/zero", "//tmp", "/tmp/../tmp",
	};
	unsigned int n = below(sizeof(paths) / sizeof(paths[0]) + 5);

	if (n < sizeof(paths) / sizeof(paths[0]))
		return paths[n];
	return devs[n - sizeof(paths) / sizeof(paths[0])].path;
}

static void random_bytes(void *p, size_t len)
{
	unsigned char *c = p;

	while (len--)
		*c++ = r64();
}

/* Random attributes, nested up to @depth levels. */
static void random_attrs(struct buf *b, unsigned int depth)
{
	unsigned int n = 1 + below(6);

	while (n-- && b->len + 64 < b->cap) {
		uint16_t type = below(VSS_A_MAX + 4);
		unsigned char data[64];
		size_t len;

		if (chance(10))
			type = r64();
		if (depth && chance(3)) {
			size_t at = attr_start(b, type | NLA_F_NESTED);

			random_attrs(b, depth - 1);
			attr_end(b, at);
			continue;
		}
		switch (below(5)) {
		case 0: attr_u32(b, type, odd_value()); break;
		case 1: attr_u64(b, type, odd_value()); break;
		case 2: attr_str(b, type, some_path()); break;
		case 3: attr_dev(b, type, some_dev()); break;
		default:
			len = below(sizeof(data) + 1);
			random_bytes(data, len);
			attr(b, type, data, len);
		}
	}
}

struct known_id {
	uint8_t id[VSS_ID_LEN];
};

/* The sets this fuzzer made: it may delete them, and only them. */
static struct known_id own_sets[OWN_SETS_ROOM];
static unsigned int nr_own_sets;

static void some_id(uint8_t *id)
{
	if (nr_own_sets && chance(3))
		memcpy(id, own_sets[below(nr_own_sets)].id, VSS_ID_LEN);
	else
		random_bytes(id, VSS_ID_LEN);
}

/* A well-formed request of @cmd, with plausible and odd values. */
static void valid_request(struct buf *b, uint8_t cmd, bool quiet_create)
{
	uint8_t id[VSS_ID_LEN];
	struct vss_cbt_extent ext[4];
	size_t at;
	unsigned int i;

	switch (cmd) {
	case VSS_CMD_CREATE_SET:
		at = attr_start(b, VSS_A_DEVICES | NLA_F_NESTED);
		/* Mostly one origin that really exists, to make snapshots. */
		if (quiet_create) {
			attr_dev(b, VSS_A_DEVICE, makedev(1, 3));
		} else {
			for (i = 0, cmd = 1 + below(3); i < cmd; i++)
				attr_dev(b, VSS_A_DEVICE,
					 chance(4) ? some_dev() :
					 devs[chance(2) ? 0 : 1].rdev);
		}
		attr_end(b, at);
		attr_str(b, VSS_A_STORAGE_PATH, chance(3) ? some_path() : "/tmp");
		if (!chance(5))
			attr_u64(b, VSS_A_STORAGE_LIMIT,
				 chance(4) ? odd_value() : (1 + below(8)) << 20);
		if (chance(2))
			attr_u32(b, VSS_A_CHUNK_SIZE,
				 chance(3) ? odd_value() : 4096u << below(9));
		if (chance(2))
			attr_str(b, VSS_A_LABEL, chance(2) ? "fuzz" : some_path());
		if (chance(3))
			attr_u32(b, VSS_A_FLAGS, chance(2) ? VSS_CREATE_NO_FREEZE :
				 odd_value());
		if (chance(3))
			attr_u32(b, VSS_A_HOLD_LIMIT_MS,
				 chance(2) ? 1 + below(60000) : odd_value());
		break;
	case VSS_CMD_GET_SNAPSHOT:
		if (chance(2)) {
			some_id(id);
			attr(b, VSS_A_SNAP_ID, id, sizeof(id));
		} else {
			attr_dev(b, VSS_A_DEVICE, some_dev());
		}
		break;
	case VSS_CMD_DELETE_SNAPSHOT:
		some_id(id);
		attr(b, chance(2) ? VSS_A_SET_ID : VSS_A_SNAP_ID, id, sizeof(id));
		if (chance(2))
			attr_u32(b, VSS_A_FLAGS, chance(2) ? VSS_DELETE_FORCE :
				 odd_value());
		break;
	case VSS_CMD_TRACK:
	case VSS_CMD_UNTRACK:
	case VSS_CMD_GET_CBT:
		/* A and B carry the known sets: never stop their tracking. */
		attr_dev(b, VSS_A_DEVICE, chance(2) ? devs[4].rdev : some_dev());
		break;
	case VSS_CMD_CBT_CHANGES:
		attr_dev(b, VSS_A_DEVICE, chance(2) ? devs[0].rdev : some_dev());
		if (chance(2)) {
			attr(b, VSS_A_CBT_GENERATION, cbt_gen_a, VSS_ID_LEN);
		} else {
			random_bytes(id, sizeof(id));
			attr(b, VSS_A_CBT_GENERATION, id, sizeof(id));
		}
		attr_u64(b, VSS_A_CBT_FROM, chance(2) ? below(3) : odd_value());
		if (chance(2))
			attr_u64(b, VSS_A_CBT_TO, chance(2) ? below(4) : odd_value());
		break;
	case VSS_CMD_CBT_MARK_DIRTY:
		attr_dev(b, VSS_A_DEVICE, some_dev());
		attr_u64(b, VSS_A_CBT_OFFSET, chance(2) ? below(1 << 24) : odd_value());
		attr_u64(b, VSS_A_CBT_LENGTH, chance(2) ? below(1 << 20) : odd_value());
		break;
	case VSS_CMD_CBT_SAVE:
		attr_dev(b, VSS_A_DEVICE, chance(2) ? devs[4].rdev : some_dev());
		break;
	case VSS_CMD_CBT_RESTORE:
		attr_dev(b, VSS_A_DEVICE, chance(2) ? devs[4].rdev : some_dev());
		attr_u32(b, VSS_A_FLAGS, chance(3) ? odd_value() : below(4));
		if (chance(2)) {
			at = attr_start(b, VSS_A_CBT_STATE | NLA_F_NESTED);
			attr_dev(b, VSS_A_DEVICE, devs[4].rdev);
			random_bytes(id, sizeof(id));
			attr(b, VSS_A_CBT_GENERATION, id, sizeof(id));
			attr_u64(b, VSS_A_CBT_SEQ, chance(2) ? below(4) : odd_value());
			attr_u64(b, VSS_A_CBT_OLDEST_SEQ, below(3));
			attr_u32(b, VSS_A_CBT_BLOCK_SIZE, chance(2) ? 4096 : odd_value());
			attr_u64(b, VSS_A_CBT_SIZE, chance(2) ?
				 devs[4].sectors * 512 : odd_value());
			attr_u64(b, VSS_A_CBT_STARTED_NS, r64());
			random_bytes(id, sizeof(id));
			attr(b, VSS_A_CBT_BOOT_ID, id, sizeof(id));
			attr_u64(b, VSS_A_CBT_DISKSEQ, odd_value());
			attr_u64(b, VSS_A_CBT_WRITE_IOS, odd_value());
			attr_u64(b, VSS_A_CBT_DIRECT_WRITE_IOS, odd_value());
			attr_u32(b, VSS_A_CBT_SAVE_FLAGS, below(4));
			attr_end(b, at);
		} else {
			attr_u64(b, VSS_A_CBT_SEQ, chance(2) ? below(4) : odd_value());
			for (i = 0; i < 4; i++) {
				ext[i].offset = chance(2) ? i * 8192 : odd_value();
				ext[i].length = chance(2) ? 4096 : odd_value();
			}
			attr(b, VSS_A_CBT_EXTENTS, ext, sizeof(ext[0]) * (1 + below(4)));
		}
		break;
	default:
		break;
	}
}

/* Mutations of a message built in @b from byte @from on (the attributes). */
static void mutate(struct buf *b, size_t from)
{
	unsigned int n = 1 + below(4);

	while (n--) {
		size_t span = b->len - from;
		size_t at = from + (span ? below(span) : 0);

		switch (below(8)) {
		case 0:	/* flip bits */
			if (span)
				b->p[at] ^= 1 << below(8);
			break;
		case 1:	/* a random byte */
			if (span)
				b->p[at] = r64();
			break;
		case 2:	/* an interesting 16-bit value (lengths, types) */
			if (span >= 2 && at + 2 <= b->len) {
				uint16_t v = chance(2) ? 0xffff : below(16);

				memcpy(b->p + at, &v, 2);
			}
			break;
		case 3:	/* cut the tail */
			b->len = at;
			break;
		case 4:	/* random attributes appended */
			random_attrs(b, 3);
			break;
		case 5:	/* duplicate the attributes */
			if (span && b->len + span <= b->cap) {
				memmove(b->p + b->len, b->p + from, span);
				b->len += span;
			}
			break;
		case 6:	/* garbage appended, unaligned */
			if (b->len + 32 <= b->cap) {
				size_t len = below(32);

				random_bytes(b->p + b->len, len);
				b->len += len;
			}
			break;
		default: /* a huge string attribute */
			if (b->len + 8200 <= b->cap) {
				size_t len = 4090 + below(4100);
				size_t a = attr_start(b, chance(2) ? VSS_A_STORAGE_PATH :
						      VSS_A_LABEL);

				memset(b->p + b->len, 'x', len);
				b->p[b->len + len - 1] = chance(2) ? 0 : 'y';
				b->len += len;
				attr_end(b, a);
				put_pad(b);
			}
			break;
		}
	}
}

/* --- the netlink socket ------------------------------------------------------- */

struct sock {
	int fd;
	uint16_t family;
	uint32_t seq;
};

static int sock_open(struct sock *s, uint16_t family, int rcvbuf)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1;

	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       NETLINK_GENERIC);
	if (s->fd < 0)
		return -errno;
	setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (rcvbuf)
		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s->fd);
		return -errno;
	}
	s->family = family;
	return 0;
}

static bool is_mutating(uint8_t cmd)
{
	switch (cmd) {
	case VSS_CMD_GET_VERSION:
	case VSS_CMD_GET_SNAPSHOT:
	case VSS_CMD_GET_CBT:
		return false;
	default:
		return true;
	}
}

/* Remembers a set the fuzzer created, from CREATE_SET's reply. */
static void note_created(const struct nlmsghdr *nlh)
{
	const struct nlattr *a = (const void *)((const char *)nlh + GENL_HDR);
	int rem = nlh->nlmsg_len - GENL_HDR;

	for (; rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		if ((a->nla_type & NLA_TYPE_MASK) != VSS_A_SET_ID ||
		    a->nla_len != NLA_HDRLEN + VSS_ID_LEN)
			continue;
		stats->sets_made++;
		if (nr_own_sets < OWN_SETS_ROOM)
			memcpy(own_sets[nr_own_sets++].id, NLA_DATA(a), VSS_ID_LEN);
		return;
	}
}

/*
 * Reads what is queued (at most @max messages; 0: all). Returns how many
 * data messages came, and records unprivileged successes.
 */
static unsigned int drain(struct sock *s, unsigned int max, bool unpriv,
			  const char *what)
{
	static char rbuf[VSS_NL_BUF];
	unsigned int got = 0;

	for (;;) {
		ssize_t n = recv(s->fd, rbuf, max ? 4096 : sizeof(rbuf), MSG_DONTWAIT);
		struct nlmsghdr *nlh;

		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return got;
		}
		for (nlh = (void *)rbuf; NLMSG_OK(nlh, n); nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int err = ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
				struct nlmsghdr *req = &((struct nlmsgerr *)NLMSG_DATA(nlh))->msg;
				uint8_t cmd = ((struct genlmsghdr *)NLMSG_DATA(req))->cmd;

				if (err) {
					stats->errors++;
					continue;
				}
				stats->acked_ok++;
				/*
				 * An ack of 0 to an unprivileged mutating
				 * command: it went through. The echoed
				 * header must be whole to tell the command,
				 * and a request (others are acked unread).
				 */
				if (unpriv && req->nlmsg_type == s->family &&
				    (req->nlmsg_flags & NLM_F_REQUEST) &&
				    req->nlmsg_len >= GENL_HDR && is_mutating(cmd) &&
				    !stats->unpriv_success++)
					snprintf(stats->unpriv_what,
						 sizeof(stats->unpriv_what),
						 "command %u acked 0 (%s)", cmd, what);
				continue;
			}
			if (nlh->nlmsg_type != s->family)
				continue;
			got++;
			stats->data++;
			if (nlh->nlmsg_len >= GENL_HDR) {
				uint8_t cmd = ((struct genlmsghdr *)NLMSG_DATA(nlh))->cmd;

				if (unpriv && is_mutating(cmd) && !stats->unpriv_success++)
					snprintf(stats->unpriv_what,
						 sizeof(stats->unpriv_what),
						 "command %u answered with data (%s)",
						 cmd, what);
				if (!unpriv && cmd == VSS_CMD_CREATE_SET)
					note_created(nlh);
			}
		}
		if (max && got >= max)
			return got;
	}
}

static void sock_send(struct sock *s, const void *p, size_t len)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	stats->sends++;
	/*
	 * sendto() can carry the kernel's answer (a dump's start failing:
	 * ENODATA, ESTALE...); only errors of the socket itself count.
	 */
	if (sendto(s->fd, p, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    (errno == EBADF || errno == EFAULT || errno == ENOTSOCK ||
	     errno == ENOMEM) && !stats->send_errors++)
		stats->send_errno = errno;
}

/* --- one message ------------------------------------------------------------ */

static const uint8_t commands[] = {
	VSS_CMD_GET_VERSION, VSS_CMD_CREATE_SET, VSS_CMD_GET_SNAPSHOT,
	VSS_CMD_DELETE_SNAPSHOT, VSS_CMD_EVENT, VSS_CMD_TRACK,
	VSS_CMD_UNTRACK, VSS_CMD_GET_CBT, VSS_CMD_CBT_CHANGES,
	VSS_CMD_CBT_MARK_DIRTY, VSS_CMD_CBT_SAVE, VSS_CMD_CBT_RESTORE,
};

static const uint8_t dump_commands[] = {
	VSS_CMD_GET_SNAPSHOT, VSS_CMD_GET_CBT, VSS_CMD_CBT_CHANGES,
	VSS_CMD_CBT_SAVE,
};

/*
 * Builds one message into @b: a header and attributes. @creates_left
 * bounds the well-formed CREATE_SETs (each makes a snapshot set, slowly).
 */
static void build_message(struct buf *b, struct sock *s, unsigned long *creates_left)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	uint8_t cmd = commands[below(sizeof(commands))];
	unsigned int kind = below(10);
	bool quiet_create = false;
	size_t start = b->len;

	/* Real devices only while the budget lasts; else /dev/null. */
	if (cmd == VSS_CMD_CREATE_SET) {
		if (*creates_left && (kind < 5 || kind == 8))
			(*creates_left)--;
		else
			quiet_create = true;
	}
	b->len = start + GENL_HDR;
	memset(b->p + start, 0, GENL_HDR);
	nlh = (void *)(b->p + start);
	g = (void *)(b->p + start + NLMSG_HDRLEN);
	nlh->nlmsg_type = s->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++s->seq;
	g->cmd = cmd;
	g->version = VSS_GENL_VERSION;

	switch (kind) {
	case 0:
	case 1:	/* well-formed */
		valid_request(b, cmd, quiet_create);
		break;
	case 2:
	case 3:
	case 4:	/* well-formed, mutated */
		valid_request(b, cmd, quiet_create);
		mutate(b, start + GENL_HDR);
		break;
	case 5:
	case 6:	/* random attributes, nested */
		random_attrs(b, 4);
		break;
	case 7:	/* random header */
		g->cmd = chance(2) ? r64() : cmd;
		g->version = chance(2) ? r64() : VSS_GENL_VERSION;
		g->reserved = r64();
		nlh->nlmsg_flags = chance(2) ? (uint16_t)r64() :
			NLM_F_REQUEST | NLM_F_ACK | (chance(2) ? NLM_F_DUMP : 0);
		if (chance(8))
			nlh->nlmsg_type = chance(2) ? r64() : GENL_ID_CTRL;
		valid_request(b, cmd, true);
		break;
	case 8:	/* as a dump */
		nlh->nlmsg_flags |= NLM_F_DUMP;
		if (chance(2))
			valid_request(b, cmd, quiet_create);
		else
			random_attrs(b, 2);
		break;
	default: /* lengths that lie */
		valid_request(b, cmd, true);
		break;
	}
	nlh = (void *)(b->p + start);
	nlh->nlmsg_len = b->len - start;
	if (kind == 9) {
		switch (below(4)) {
		case 0: nlh->nlmsg_len = below(b->len - start + 1); break;
		case 1: nlh->nlmsg_len += 1 + below(64); break;
		case 2: nlh->nlmsg_len = 0xffffffff - below(16); break;
		default: b->len = start + below(b->len - start + 1); break;
		}
	}
}

/* A dump stopped part way: the socket closed, or another dump asked for. */
static void cut_dump(uint16_t family, bool unpriv)
{
	char raw[1024];
	struct buf b = { .p = raw, .cap = sizeof(raw) };
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct sock s;
	unsigned int i, n, rounds = 1 + below(3);

	/* A small receive buffer makes a dump take several rounds. */
	if (sock_open(&s, family, chance(2) ? 1024 : 0))
		return;
	for (i = 0; i < rounds; i++) {
		uint8_t cmd = dump_commands[below(sizeof(dump_commands))];

		b.len = GENL_HDR;
		memset(raw, 0, GENL_HDR);
		nlh = (void *)raw;
		g = (void *)(raw + NLMSG_HDRLEN);
		nlh->nlmsg_type = family;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP;
		nlh->nlmsg_seq = ++s.seq;
		g->cmd = cmd;
		g->version = VSS_GENL_VERSION;
		if (cmd == VSS_CMD_GET_SNAPSHOT)
			attr_dev(&b, VSS_A_DEVICE, devs[below(2)].rdev);
		else
			valid_request(&b, cmd, true);
		nlh->nlmsg_len = b.len;
		sock_send(&s, raw, b.len);
		stats->sent++;
		n = below(3);
		if (n)
			drain(&s, n, unpriv, "cut dump");
	}
	stats->dumps_cut++;
	close(s.fd);
}

/* Deletes one of the sets this fuzzer made, to keep their number small. */
static void delete_own(struct sock *s, bool unpriv)
{
	char raw[256];
	struct buf b = { .p = raw, .cap = sizeof(raw), .len = GENL_HDR };
	struct nlmsghdr *nlh = (void *)raw;
	struct genlmsghdr *g = (void *)(raw + NLMSG_HDRLEN);

	memset(raw, 0, GENL_HDR);
	nlh->nlmsg_type = s->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++s->seq;
	g->cmd = VSS_CMD_DELETE_SNAPSHOT;
	g->version = VSS_GENL_VERSION;
	attr(&b, VSS_A_SET_ID, own_sets[0].id, VSS_ID_LEN);
	attr_u32(&b, VSS_A_FLAGS, VSS_DELETE_FORCE);
	nlh->nlmsg_len = b.len;
	sock_send(s, raw, b.len);
	stats->sent++;
	drain(s, 0, unpriv, "delete");
	stats->sets_deleted++;
	memmove(own_sets, own_sets + 1, sizeof(own_sets[0]) * --nr_own_sets);
}

/* Sends @count messages; runs in a child process of its own. */
static void fuzz(uint16_t family, unsigned long count, bool unpriv)
{
	static char raw[3 * 65536];
	unsigned long creates_left = unpriv ? count : count / 400;
	struct sock s;

	if (sock_open(&s, family, 0))
		_exit(2);
	while (count) {
		struct buf b = { .p = raw, .cap = sizeof(raw) };
		unsigned int i, batch = chance(20) ? 2 + below(4) : 1;

		if (chance(200)) {
			cut_dump(family, unpriv);
			count--;
			continue;
		}
		while (nr_own_sets >= MAX_OWN_SETS)
			delete_own(&s, unpriv);
		if (nr_own_sets && chance(300))
			delete_own(&s, unpriv);
		/* Several messages in one send: the kernel takes them in turn. */
		for (i = 0; i < batch && count && b.cap - b.len > 70000; i++) {
			size_t at = NLMSG_ALIGN(b.len);

			b.len = at;
			build_message(&b, &s, &creates_left);
			count--;
			stats->sent++;
		}
		sock_send(&s, raw, b.len);
		drain(&s, 0, unpriv, "fuzz");
		/* Now and then a fresh socket, with a dump possibly still queued. */
		if (chance(1000)) {
			close(s.fd);
			if (sock_open(&s, family, 0))
				_exit(2);
		}
	}
	while (nr_own_sets)
		delete_own(&s, unpriv);
	close(s.fd);
	_exit(0);
}

/* --- the writer ------------------------------------------------------------- */

static void on_term(int sig)
{
	stop_writer = 1;
}

/* Writes stamps of rising sequence to random 4 KiB blocks of A and B. */
static void writer(uint64_t seed)
{
	void *buf = aligned_buf(4096);
	uint64_t state = seed | 1, seq = 3;
	int fd[2];

	signal(SIGTERM, on_term);
	fd[0] = open(devs[0].path, O_RDWR | O_DIRECT);
	fd[1] = open(devs[1].path, O_RDWR | O_DIRECT);
	if (fd[0] < 0 || fd[1] < 0 || !buf)
		_exit(2);
	while (!stop_writer) {
		unsigned int which = rnd(&state) & 1;
		uint64_t first = (rnd(&state) % (WRITE_SPAN / 4096)) * 8;
		int ret = write_stamps(fd[which], buf, first, 8, seq++ & 0xffff);

		if (ret) {
			if (!stats->write_errors++)
				snprintf(stats->write_err, sizeof(stats->write_err),
					 "%s sector %llu: %s", devs[which].path,
					 (unsigned long long)first, strerror(-ret));
		} else {
			stats->writes++;
		}
		if (seq == 0x10000)
			seq = 3;
	}
	_exit(0);
}

/* --- the known snapshots -------------------------------------------------------- */

struct known_set {
	struct vss_created made;
	uint16_t *expect[2];	/* per sector of A and B, at the commit */
};

static int fill(struct dev *d, uint64_t first, uint64_t nr, uint64_t seq)
{
	int fd = open(d->path, O_RDWR | O_DIRECT);
	void *buf = aligned_buf(2048 * SECTOR);
	uint64_t s;
	int ret = 0;

	if (fd < 0 || !buf)
		return -1;
	for (s = first; s < first + nr && !ret; s += 2048)
		ret = write_stamps(fd, buf, s, first + nr - s < 2048 ?
				   first + nr - s : 2048, seq);
	fsync(fd);
	close(fd);
	free(buf);
	return ret;
}

static int verify_set(struct vss_nl *nl, struct known_set *k, char *why)
{
	unsigned int i;

	for (i = 0; i < k->made.nr; i++) {
		int err = 0, state = vss_snap_state(nl, k->made.snap_id[i], &err);
		long bad;

		if (state != VSS_STATE_ACTIVE) {
			snprintf(why, 256, "%s: state %d (errno %d)",
				 k->made.image[i], state, err);
			return -1;
		}
		bad = verify_image(k->made.image[i], devs[i].sectors,
				   k->expect[i], 0, why);
		if (bad) {
			char first[256];

			snprintf(first, sizeof(first), "%s", why);
			snprintf(why, 256, "%s: %ld bad sectors, first %.160s",
				 k->made.image[i], bad, first);
			return -1;
		}
	}
	return 0;
}

static int fetch_generation(struct vss_nl *nl, dev_t dev, uint8_t *gen)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_attrs top, cbt;
	struct vss_msg *m = calloc(1, sizeof(*m));
	size_t len = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_GET_CBT, 0);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	vss_parse(reply, len, &top);
	vss_parse_nested(top.a[VSS_A_CBT], &cbt);
	if (!cbt.a[VSS_A_CBT_GENERATION])
		return -EPROTO;
	memcpy(gen, NLA_DATA(cbt.a[VSS_A_CBT_GENERATION]), VSS_ID_LEN);
	return 0;
}

static int track(struct vss_nl *nl, dev_t dev)
{
	struct vss_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_TRACK, 0);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	ret = vss_nl_call(nl, m, NULL, NULL);
	free(m);
	return ret;
}

static pid_t spawn_fuzzer(uint16_t family, unsigned long count, bool unpriv,
			  uint64_t seed)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	rng = seed | 1;
	if (unpriv) {
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(3);
	}
	fuzz(family, count, unpriv);
	return 0;
}

static int wait_child(pid_t pid, const char *what, char *why)
{
	int status;

	if (waitpid(pid, &status, 0) < 0) {
		snprintf(why, 256, "%s: waitpid: %s", what, strerror(errno));
		return -1;
	}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	if (WIFSIGNALED(status))
		snprintf(why, 256, "%s: killed by signal %d", what, WTERMSIG(status));
	else
		snprintf(why, 256, "%s: exit status %d", what, WEXITSTATUS(status));
	return -1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

#define PLAN 10

int main(int argc, char **argv)
{
	const char *seed_env = getenv("VSS_FUZZ_SEED");
	const char *count_env = getenv("VSS_FUZZ_COUNT");
	unsigned long count = count_env ? strtoul(count_env, NULL, 0) : 100000;
	uint64_t seed, t0, t_root, t_unpriv;
	struct known_set known[2] = {};
	const char *names[2], *step;
	char why[256] = "";
	struct vss_nl nl;
	pid_t writer_pid, pid;
	unsigned int i;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	else if (seed_env)
		seed = strtoull(seed_env, NULL, 0);
	else
		seed = (uint64_t)time(NULL) << 20 ^ getpid();
	printf("TAP version 13\n1..%d\n", PLAN);
	printf("# seed %llu (VSS_FUZZ_SEED=%llu repeats it), %lu messages as root, %lu unprivileged\n",
	       (unsigned long long)seed, (unsigned long long)seed, count, count / 4);
	if (geteuid()) {
		printf("1..0 # SKIP needs root\n");
		return 4;
	}
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED)
		return 1;
	for (i = 0; i < 5; i++) {
		if (dev_open(&devs[i], scratch_disk(i))) {
			printf("Bail out! needs five scratch disks (VSS_DISKS), disk %u missing\n", i);
			return 1;
		}
	}
	if (vss_nl_open(&nl)) {
		printf("Bail out! cannot reach the vss family: is vss.ko loaded?\n");
		return 1;
	}

	/*
	 * Set 1 of A and B sees stamps of sequence 1 everywhere; set 2 sees
	 * sequence 2 on the first half of each and 1 on the rest.
	 */
	names[0] = devs[0].path;
	names[1] = devs[1].path;
	ret = fill(&devs[0], 0, devs[0].sectors, 1) ||
	      fill(&devs[1], 0, devs[1].sectors, 1);
	for (i = 0; i < 2 && !ret; i++) {
		known[0].expect[i] = calloc(devs[i].sectors, sizeof(uint16_t));
		known[1].expect[i] = calloc(devs[i].sectors, sizeof(uint16_t));
		for (uint64_t s = 0; s < devs[i].sectors; s++) {
			known[0].expect[i][s] = 1;
			known[1].expect[i][s] = s < devs[i].sectors / 2 ? 2 : 1;
		}
	}
	step = "fill";
	if (!ret) {
		step = "create set 1";
		ret = vss_create(&nl, names, 2, devs[2].path, 0, 4096, 0,
				 &known[0].made);
	}
	if (!ret) {
		step = "fill";
		ret = fill(&devs[0], 0, devs[0].sectors / 2, 2) ||
		      fill(&devs[1], 0, devs[1].sectors / 2, 2);
	}
	if (!ret) {
		step = "create set 2";
		ret = vss_create(&nl, names, 2, devs[3].path, 0, 4096, 0,
				 &known[1].made);
	}
	if (!ret) {
		step = "track E";
		ret = track(&nl, devs[4].rdev);
	}
	if (!ret) {
		step = "get A's generation";
		ret = fetch_generation(&nl, devs[0].rdev, cbt_gen_a);
	}
	tap(!ret && known[0].made.nr == 2 && known[1].made.nr == 2,
	    "setup: two sets of A and B (block stores C, D), E tracked%s%s%s%s",
	    ret ? ": " : "", ret ? step : "", ret ? ": " : "",
	    ret ? (nl.errmsg[0] ? nl.errmsg : strerror(ret < 0 ? -ret : EIO)) : "");
	if (ret)
		return 1;

	writer_pid = fork();
	if (!writer_pid)
		writer(seed ^ 0x5eed);

	t0 = now_ms();
	pid = spawn_fuzzer(nl.family, count, false, seed);
	ret = wait_child(pid, "root fuzzer", why);
	t_root = now_ms() - t0;
	tap(!ret && !stats->send_errors,
	    "%lu messages as root in %lu sends, %.1f s: %lu acked 0, %lu errors, %lu data messages, %lu dumps cut, %lu sets made %s",
	    stats->sent, stats->sends, t_root / 1000.0, stats->acked_ok,
	    stats->errors, stats->data, stats->dumps_cut, stats->sets_made, why);
	if (stats->send_errors)
		printf("# %lu sends failed unexpectedly, the first with %s\n",
		       stats->send_errors, strerror(stats->send_errno));

	{
		unsigned long root_sent = stats->sent;

		t0 = now_ms();
		pid = spawn_fuzzer(nl.family, count / 4, true, seed ^ 0xabcdef);
		ret = wait_child(pid, "unprivileged fuzzer", why);
		t_unpriv = now_ms() - t0;
		tap(!ret, "%lu messages as uid 65534 in %.1f s %s",
		    stats->sent - root_sent, t_unpriv / 1000.0, why);
	}
	tap(!stats->unpriv_success, "no mutating command succeeded unprivileged (%lu did%s%s)",
	    stats->unpriv_success, stats->unpriv_success ? ": first " : "",
	    stats->unpriv_what);

	kill(writer_pid, SIGTERM);
	ret = wait_child(writer_pid, "writer", why);
	tap(!ret && stats->writes && !stats->write_errors,
	    "the writer made %lu writes of 4 KiB to A and B, %lu failed %s%s",
	    stats->writes, stats->write_errors, stats->write_err, why);

	/* The module still answers on a fresh socket. */
	vss_nl_close(&nl);
	ret = vss_nl_open(&nl);
	tap(!ret, "the family still answers after the fuzzing (%d)", ret);
	if (ret)
		return 1;

	for (i = 0; i < 2; i++) {
		why[0] = 0;
		ret = verify_set(&nl, &known[i], why);
		tap(!ret, "set %u still reads as A and B did at its commit %s", i + 1, why);
	}

	ret = vss_delete_all(&nl);
	tap(ret >= 4, "every snapshot deleted (%d; 4 known, the rest the fuzzer's)", ret);
	ret = vss_untrack_all(&nl);
	printf("# %d devices were still tracked\n", ret);
	vss_nl_close(&nl);

	/* The last references go with RCU callbacks: allow them a moment. */
	t0 = now_ms();
	while ((ret = syscall(SYS_delete_module, "vss", O_NONBLOCK)) &&
	       (errno == EAGAIN || errno == EBUSY) && now_ms() - t0 < 10000)
		usleep(100000);
	tap(!ret, "the module unloads once everything is deleted%s%s",
	    ret ? ": " : "", ret ? strerror(errno) : "");
	printf("# totals: %lu messages (%lu root, the rest unprivileged), %.1f s of fuzzing, %lu writes during it\n",
	       stats->sent, count, (t_root + t_unpriv) / 1000.0, stats->writes);
	return tests_failed ? 1 : 0;
}
