/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvss internals shared between its files and its unit tests. Nothing
 * here is exported from libvss.so: the library is built with hidden
 * visibility and only VSS_EXPORT functions are public.
 */
#ifndef LIBVSS_INTERNAL_H
#define LIBVSS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "../libvss.h"

#define VSS_EXPORT __attribute__((visibility("default")))

/* Longest library or kernel message kept about a failure, with its NUL. */
#define VSS_ERROR_MESSAGE_MAX	256

/*
 * The details of the last failure of a call on a handle. The object is as
 * long as a path can be, since it is often the device path the caller gave.
 */
struct vss_error_state {
	int code;
	int attr;
	char message[VSS_ERROR_MESSAGE_MAX];
	char object[VSS_PATH_MAX];
};

struct vss_event_queue {
	struct vss_event_info *items;
	size_t head;
	size_t count;
	size_t capacity;
};

struct vss_handle {
	int fd;				/* request socket */
	uint32_t seq;			/* last sequence number used */
	uint16_t family_id;
	uint32_t family_version;
	uint32_t events_group;		/* 0: the family has none */
	char module_version[VSS_MODULE_VERSION_MAX];
	uint32_t module_protocol;

	int event_fd;			/* -1 until subscribed */
	struct vss_event_queue events;

	unsigned char *rxbuf;		/* shared by both sockets */
	size_t rxbuf_size;

	struct vss_error_state err;
};

/*
 * A byte range of a request message and what it concerns, so that an
 * extended ack's attribute offset can be turned back into the caller's
 * words (a device path, the storage path).
 */
struct vss_span {
	uint32_t start;
	uint32_t end;
	const char *object;
};

#define VSS_REQUEST_MAX_SPANS	(VSS_MAX_SET_DEVICES + 8)

/*
 * Called for each reply message of the family, with its attributes after
 * the genetlink header. Returns 0 or a negative errno.
 */
typedef int (*vss_reply_fn)(struct vss_handle *h, const struct nlmsghdr *nlh,
			    void *arg);

struct vss_request {
	struct nl_msg *msg;
	bool dump;
	vss_reply_fn on_reply;
	void *arg;
	size_t span_count;
	struct vss_span spans[VSS_REQUEST_MAX_SPANS];
};

/* What an NLMSG_ERROR or NLMSG_DONE message says, extended ack included. */
struct vss_ack {
	int error;			/* 0 or negative errno */
	const char *message;		/* points into the message, or NULL */
	size_t message_len;
	bool has_offset;
	uint32_t offset;		/* of the blamed attribute, in the request */
	bool has_missing_type;
	uint32_t missing_type;		/* required attribute that was absent */
	bool has_missing_nest;
	uint32_t missing_nest;		/* offset of the nest it was missing in */
};

/* handle.c */
int vss_open_fd(int fd, struct vss_handle **out);
int vss_netlink_socket(int *fd_out);
int vss_resolve_family(struct vss_handle *h);
int vss_require_protocol(struct vss_handle *h);
int vss_require_admin(struct vss_handle *h);

/* netlink.c */
int vss_request_init(struct vss_request *req, struct vss_handle *h,
		     uint16_t type, uint8_t cmd, uint8_t version, bool dump);
void vss_request_fini(struct vss_request *req);
int vss_request_add_span(struct vss_request *req, const struct nlattr *attr,
			 const char *object);
int vss_transact(struct vss_handle *h, struct vss_request *req);
int vss_parse_ack(const struct nlmsghdr *nlh, struct vss_ack *out);
void vss_error_from_ack(struct vss_handle *h, const struct vss_request *req,
			const struct vss_ack *ack);
ssize_t vss_recv_datagram(struct vss_handle *h, int fd, int flags,
			  bool retry_on_signal);
int vss_genl_attrs(const struct nlmsghdr *nlh, struct nlattr **tb, int maxtype,
		   const struct nla_policy *policy);

/* error.c */
void vss_error_clear(struct vss_handle *h);
int vss_error_set(struct vss_handle *h, int code, const char *object,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void vss_error_append(struct vss_handle *h, const char *text);

/* snapshot.c */
int vss_parse_device(const struct nlattr *nest, struct vss_device *out);
int vss_parse_snapshot(const struct nlattr *nest, struct vss_snapshot_info *out);
int vss_put_device(struct nl_msg *msg, int attrtype, uint32_t major,
		   uint32_t minor, struct nlattr **nest_out);
int vss_build_create(struct vss_request *req,
		     const struct vss_create_params *params,
		     const struct vss_device *devices,
		     const char *absolute_storage_path);

/* event.c */
int vss_parse_event(const struct nlmsghdr *nlh, struct vss_event_info *out);
int vss_event_attach_fd(struct vss_handle *h, int fd);
/* event_socket.c: opens the socket vss_event_subscribe() listens on */
int vss_event_open_socket(struct vss_handle *h, int *fd_out);

/* id.c */
int vss_id_get(const struct nlattr *attr, struct vss_id *out);

/* cbt.c */
int vss_parse_cbt(const struct nlattr *nest, struct vss_cbt_info *out);
int vss_cbt_put_device(struct vss_request *req, const struct vss_device *dev,
		       const char *object);
int vss_cbt_lookup(struct vss_handle *h, const char *device_path,
		   struct vss_device *out);
void vss_device_object(const struct vss_device *dev, char *buf, size_t len);
/* The request's spans keep a pointer to @object: it must outlive @req. */
int vss_cbt_simple_request(struct vss_handle *h, uint8_t cmd,
			   const struct vss_device *dev, const char *object,
			   struct vss_cbt_info *out);

/* crc32c.c: CRC-32C (Castagnoli), as iSCSI, ext4 and btrfs use it. */
uint32_t vss_crc32c(uint32_t crc, const void *data, size_t len);

/*
 * sysroot.c: the directory the system's /dev, /sys and /proc are under:
 * "" on a real system. Alone in its file so that a test program can
 * supply its own and point the library at a fake tree.
 */
const char *vss_system_root(void);

/* cbt_identity.c: how a device is found again after a reboot. */
enum vss_cbt_identity_kind {
	VSS_CBT_ID_BY_ID = 3,		/* a link name in /dev/disk/by-id */
	VSS_CBT_ID_PARTUUID = 4,	/* a partition's table entry uuid */
	VSS_CBT_ID_DM_UUID = 5,		/* /sys/block/dm-N/dm/uuid */
	VSS_CBT_ID_HARDWARE = 6,	/* disk wwid/serial and partition */
};

/* Longest identity text kept, with its NUL. */
#define VSS_CBT_IDENTITY_MAX	512
/* Most identity records kept per device. */
#define VSS_CBT_IDENTITY_COUNT	32

struct vss_cbt_identity_entry {
	uint32_t kind;			/* enum vss_cbt_identity_kind */
	char text[VSS_CBT_IDENTITY_MAX];
};

struct vss_cbt_identity {
	size_t count;
	struct vss_cbt_identity_entry entries[VSS_CBT_IDENTITY_COUNT];
};

void vss_cbt_identity_collect(const struct vss_device *dev,
			      struct vss_cbt_identity *out);
/* The device one identity entry names now: 0, -ENOENT, or -errno. */
int vss_cbt_identity_resolve(const struct vss_cbt_identity_entry *entry,
			     struct vss_device *out);
/* This boot's id, from /proc/sys/kernel/random/boot_id. */
int vss_read_boot_id(struct vss_id *out);
/* The kernel name of a device number now, from sysfs; "" if none. */
void vss_sysfs_name(uint32_t major, uint32_t minor, char *name, size_t len);
/* The device whose kernel name is @name now: 0 or -ENOENT. */
int vss_sysfs_device_by_name(const char *name, struct vss_device *out);

#endif /* LIBVSS_INTERNAL_H */
