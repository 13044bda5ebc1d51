/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A simulated vss kernel module for host tests. It answers the generic
 * netlink controller and the vss family as <linux/vss.h> documents them,
 * over a SOCK_SEQPACKET socketpair instead of a netlink socket, from a
 * thread of the test process. Errors carry extended acks like the real
 * kernel's (NLM_F_CAPPED | NLM_F_ACK_TLVS, NLMSGERR_ATTR_MSG/OFFS).
 *
 * Its state can be kept in a file, so that several runs of the fake
 * vssctl (tests/fake_main.c) see each other's snapshots.
 */
#ifndef VSS_FAKE_KERNEL_H
#define VSS_FAKE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "libvss.h"

#define FAKE_FAMILY_ID		0x1d
#define FAKE_EVENTS_GROUP	7
#define FAKE_IMAGE_MAJOR	251
#define FAKE_MAX_SNAPSHOTS	64

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

void fake_snapshot_init(struct fake_snapshot *s, const char *id_hex,
			const char *set_hex, uint32_t major, uint32_t minor,
			const char *name, uint32_t index);
int fake_state_load(const char *path, struct fake_state *state);
int fake_state_save(const char *path, const struct fake_state *state);

#endif /* VSS_FAKE_KERNEL_H */
