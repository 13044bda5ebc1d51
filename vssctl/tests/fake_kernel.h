/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A simulated vss kernel module for host tests. It answers the generic
 * netlink controller and the vss family as <linux/vss.h> documents them,
 * over a SOCK_SEQPACKET socketpair instead of a netlink socket, from a
 * thread of the test process. Errors carry extended acks like the real
 * kernel's (NLM_F_CAPPED | NLM_F_ACK_TLVS, NLMSGERR_ATTR_MSG/OFFS).
 *
 * Its state can be kept in a file, so that several runs of the fake
 * vssctl (tests/fake_main.c) see each other's snapshots and tracking.
 *
 * Changed-block tracking (fake_cbt.c) runs on simulated disks: device
 * minor N (N < FAKE_MAX_DISKS) is a disk "fakeN" of FAKE_CBT_SIZE bytes
 * unless its size is set, whose writes the tests make with
 * fake_cbt_write(). Dumps put few extents in each message and cut long
 * runs into touching pieces, so that clients must merge them.
 */
#ifndef VSS_FAKE_KERNEL_H
#define VSS_FAKE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include <netlink/msg.h>

#include "libvss.h"

#define FAKE_FAMILY_ID		0x1d
#define FAKE_EVENTS_GROUP	7
#define FAKE_IMAGE_MAJOR	251
#define FAKE_MAX_SNAPSHOTS	64

/* The simulated kernel's boot id, unless the state says otherwise. */
#define FAKE_BOOT_ID		"b0070000-0000-4000-8000-000000000001"

#define FAKE_MAX_DISKS		16
#define FAKE_MAX_TRACKED	8
#define FAKE_CBT_BLOCK_SIZE	4096
#define FAKE_CBT_BLOCKS		2048
/* Not a multiple of the block size: the last block ends short. */
#define FAKE_CBT_SIZE		(FAKE_CBT_BLOCKS * FAKE_CBT_BLOCK_SIZE - 1024)
/* Intervals kept per device; older ones are dropped. */
#define FAKE_CBT_INTERVALS	8
/* Extents per dump message, and blocks per piece of a cut run. */
#define FAKE_CBT_EXTENTS_PER_MSG 3
#define FAKE_CBT_RUN_CUT	4

struct fake_snapshot {
	uint8_t id[VSS_ID_LEN];
	uint8_t set_id[VSS_ID_LEN];
	uint32_t origin_major, origin_minor;
	char origin_name[32];
	uint32_t image_minor;
	uint32_t index;
	uint64_t created_ns;
	uint32_t state;
	uint32_t error;
	char reason[64];
	uint32_t chunk_size;
	char label[VSS_LABEL_MAX];
	char storage_path[256];
	uint32_t storage_kind;
	uint64_t storage_used, storage_size, storage_limit;
	uint64_t hold_us;
	uint32_t open_count;
	bool has_cbt;			/* the point at which it was taken */
	uint8_t cbt_generation[VSS_ID_LEN];
	uint64_t cbt_seq;
};

struct fake_cbt_map {
	uint8_t bits[FAKE_CBT_BLOCKS / 8];
};

/* One tracked device. Interval s's map is maps[s % FAKE_CBT_INTERVALS]. */
struct fake_cbt {
	bool used;
	uint32_t major, minor;
	uint8_t generation[VSS_ID_LEN];
	uint64_t seq, oldest_seq, started_ns;
	struct fake_cbt_map maps[FAKE_CBT_INTERVALS];
	/* A restore between BEGIN and COMMIT, and what it brings. */
	bool restoring;
	uint32_t verdict;
	char reason[128];
	uint8_t saved_generation[VSS_ID_LEN];
	uint64_t saved_seq, saved_oldest_seq, saved_started_ns;
	struct fake_cbt_map saved_maps[FAKE_CBT_INTERVALS];
};

/* A simulated disk: what the module would read of it to judge a restore. */
struct fake_disk {
	uint64_t size;			/* 0: FAKE_CBT_SIZE */
	uint64_t diskseq;
	uint64_t write_ios;		/* since boot */
	uint32_t other_openers;
};

/* What the restore requests carried, for assertions. */
struct fake_restore_log {
	uint32_t begins, interval_requests, commits;
	uint32_t max_request_len;	/* bytes of the largest request */
	uint64_t extents;		/* received in interval requests */
	bool begin_had_diskseq, begin_had_direct_ios;
	uint8_t begin_generation[VSS_ID_LEN];
	uint32_t begin_major, begin_minor;	/* the target device */
	uint32_t state_major, state_minor;	/* inside the state */
};

/* What the last CREATE_SET request carried, for assertions. */
struct fake_create_request {
	uint32_t device_count;
	uint32_t majors[VSS_MAX_SET_DEVICES], minors[VSS_MAX_SET_DEVICES];
	char storage_path[VSS_PATH_MAX];
	bool has_limit, has_chunk, has_flags, has_hold, has_label;
	uint64_t storage_limit;
	uint32_t chunk_size, flags, hold_limit_ms;
	char label[VSS_LABEL_MAX];
};

struct fake_state {
	uint32_t count;
	uint32_t next_image_minor;
	uint32_t next_id;
	uint32_t requests;		/* requests of the vss family seen */
	uint32_t last_cmd;
	uint32_t last_delete_flags;
	struct fake_create_request last_create;
	struct fake_snapshot snaps[FAKE_MAX_SNAPSHOTS];
	uint8_t boot_id[VSS_ID_LEN];
	uint32_t next_generation;
	uint64_t last_mark_offset, last_mark_length;
	struct fake_cbt tracked[FAKE_MAX_TRACKED];
	struct fake_disk disks[FAKE_MAX_DISKS];
	struct fake_restore_log restore_log;
};

struct fake_options {
	bool no_family;			/* "vss" not registered */
	uint32_t protocol;		/* 0: VSS_PROTOCOL_VERSION */
	bool deny;			/* mutating commands get EPERM */
	uint32_t busy_major, busy_minor;	/* CREATE_SET: EBUSY for it */
	bool dump_error;		/* dumps end with ENOBUFS in NLMSG_DONE */
	bool dump_interrupt_once;	/* first dump flagged NLM_F_DUMP_INTR */
	bool create_without_reply;	/* CREATE_SET only acknowledged */
	const char *state_file;		/* load at start, save after changes */
	bool cbt_unsorted;		/* CBT_CHANGES: two extents swapped */
	bool cbt_save_breaks;		/* CBT_SAVE: a bad extent after the state */
	int cbt_interval_error;		/* CBT_RESTORE: intervals fail with it */
};

struct fake_kernel {
	int fd;				/* our end of the request socketpair */
	int event_fd;			/* our end of the event socketpair, or -1 */
	struct fake_options opts;
	struct fake_state state;
	bool interrupted_once;		/* for dump_interrupt_once */
	pthread_t thread;
	pthread_mutex_t lock;
};

/* Starts the simulation; *client_fd is the socket for vss_open_fd(). */
struct fake_kernel *fake_kernel_start(const struct fake_options *opts,
				      int *client_fd);
/* Waits for the client to close its socket, then frees everything. */
void fake_kernel_stop(struct fake_kernel *k);
/* A socketpair for events; returns the client's end. */
int fake_kernel_event_socket(struct fake_kernel *k);
/* Sends one VSS_CMD_EVENT on the event socket. */
int fake_kernel_send_event(struct fake_kernel *k, uint32_t type,
			   const struct fake_snapshot *about, uint32_t error,
			   const char *reason, bool storage);

/* Sends one tracking event (VSS_A_CBT and a reason). */
int fake_kernel_send_cbt_event(struct fake_kernel *k, uint32_t type,
			       const struct fake_cbt *t, const char *reason);

/* Shared by fake_kernel.c and fake_cbt.c. */
void fake_send_msg(int fd, struct nl_msg *msg);
struct nl_msg *fake_reply_new(const struct nlmsghdr *req, uint16_t type,
			      int flags, uint8_t cmd);
void fake_send_ack(struct fake_kernel *k, const struct nlmsghdr *req, int error,
		   const char *message, const struct nlattr *blamed);
void fake_put_device(struct nl_msg *msg, int type, uint32_t major,
		     uint32_t minor, const char *name);
void fake_make_id(uint8_t out[VSS_ID_LEN], uint8_t first, uint32_t n);
uint64_t fake_realtime_ns(void);
void fake_save_if_kept(struct fake_kernel *k);

/* fake_cbt.c: the tracking commands, and what the tests drive. */
void fake_cbt_handle(struct fake_kernel *k, const struct nlmsghdr *req,
		     struct nlattr **tb, uint8_t cmd);
/* A snapshot commit on a device: tracking starts if needed, next point. */
void fake_cbt_snapshot_point(struct fake_kernel *k, uint32_t major,
			     uint32_t minor, struct fake_snapshot *snap);
struct fake_cbt *fake_cbt_find(struct fake_state *st, uint32_t major,
			       uint32_t minor);
/* A write to a simulated disk: counted, and marked if it is tracked. */
void fake_cbt_write(struct fake_state *st, uint32_t major, uint32_t minor,
		    uint64_t offset, uint64_t length);
uint64_t fake_disk_size(const struct fake_state *st, uint32_t minor);

/*
 * The root the library reads /dev, /sys and /proc under ("" for the real
 * ones): this program's vss_system_root() returns it.
 */
extern char fake_system_root[4096];

void fake_snapshot_init(struct fake_snapshot *s, const char *id_hex,
			const char *set_hex, uint32_t major, uint32_t minor,
			const char *name, uint32_t index);
int fake_state_load(const char *path, struct fake_state *state);
int fake_state_save(const char *path, const struct fake_state *state);

#endif /* VSS_FAKE_KERNEL_H */
