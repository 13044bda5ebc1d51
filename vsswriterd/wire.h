/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wire format of vsswriterd, shared by the daemon, libvsswriter and
 * the requester side of libvss. Nothing here is exported from a library:
 * each one compiles this file in with hidden visibility.
 *
 * A connection is an AF_UNIX stream carrying the varlink wire format:
 * each message is one JSON object followed by a NUL byte.
 *   call   {"method": "io.vss.Iface.Method", "parameters": {...},
 *           "more": true?, "oneway": true?}
 *   reply  {"parameters": {...}, "continues": true?}
 *   error  {"error": "io.vss.SomeError", "parameters": {"message": ...}}
 * The protocol, message by message, is in Documentation/writers.rst.
 */
#ifndef VSS_WIRE_H
#define VSS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "libvsswriter.h"

/* Version of the protocol; a Register or Hello names the one it speaks. */
#define VSW_WIRE_PROTOCOL		1

/* Longest message, NUL included. Longer input closes the connection. */
#define VSW_WIRE_MAX_MESSAGE		(256 * 1024)
/* Deepest nesting of JSON accepted: the protocol needs 5. */
#define VSW_WIRE_MAX_DEPTH		16
/* Longest text of a name, a message or a path inside a message. */
#define VSW_NAME_MAX			128
#define VSW_MESSAGE_MAX			512
#define VSW_WIRE_PATH_MAX		4096

/* Method names. */
#define VSW_M_GET_INFO		"org.varlink.service.GetInfo"
#define VSW_M_REGISTER		"io.vss.Writer.Register"
#define VSW_M_ANSWER		"io.vss.Writer.Answer"
#define VSW_M_SET_FAILURE	"io.vss.Writer.SetFailure"
#define VSW_M_UNREGISTER	"io.vss.Writer.Unregister"
#define VSW_M_GATHER		"io.vss.Requester.GatherWriterMetadata"
#define VSW_M_PREPARE		"io.vss.Requester.PrepareBackup"
#define VSW_M_DO_SET		"io.vss.Requester.DoSnapshotSet"
#define VSW_M_DETACH		"io.vss.Requester.Detach"
#define VSW_M_BACKUP_COMPLETE	"io.vss.Requester.BackupComplete"
#define VSW_M_ABORT		"io.vss.Requester.Abort"
#define VSW_M_LIST_WRITERS	"io.vss.Coordinator.ListWriters"
#define VSW_M_LIST_SETS		"io.vss.Coordinator.ListSets"
#define VSW_M_MONITOR		"io.vss.Coordinator.Monitor"

/* Error names: varlink's own for the generic ones. */
#define VSW_E_METHOD_NOT_FOUND	"org.varlink.service.MethodNotFound"
#define VSW_E_INVALID_PARAMETER	"org.varlink.service.InvalidParameter"
#define VSW_E_PERMISSION_DENIED	"org.varlink.service.PermissionDenied"
#define VSW_E_EXPECTED_MORE	"org.varlink.service.ExpectedMore"
#define VSW_E_MALFORMED		"io.vss.MalformedMessage"
#define VSW_E_TOO_LARGE		"io.vss.MessageTooLarge"
#define VSW_E_PROTOCOL		"io.vss.ProtocolVersion"
#define VSW_E_NAME_IN_USE	"io.vss.WriterNameInUse"
#define VSW_E_WRONG_STATE	"io.vss.WrongState"
#define VSW_E_QUEUE_TIMEOUT	"io.vss.QueueTimeout"
#define VSW_E_TIMEOUT		"io.vss.RequesterTimeout"
#define VSW_E_WRITER_FAILED	"io.vss.WriterFailed"
#define VSW_E_INCONSISTENT	"io.vss.InconsistentSnapshot"
#define VSW_E_PROVIDER		"io.vss.ProviderError"
#define VSW_E_NO_SUCH_SET	"io.vss.NoSuchSet"
#define VSW_E_NO_VOLUMES	"io.vss.NoVolumes"
#define VSW_E_SHUTTING_DOWN	"io.vss.ShuttingDown"
#define VSW_E_BUSY		"io.vss.Busy"

enum vsw_kind {
	VSW_KIND_PROCESS = 1,		/* a long-lived process on libvsswriter */
	VSW_KIND_HOOK = 2,		/* an executable in writers.d */
	VSW_KIND_QEMU_GA_HOOK = 3,	/* an fsfreeze-hook.d script */
};


const char *vsw_kind_name(uint32_t kind);
const char *vsw_backup_type_name(uint32_t bit);
/* The failed-at state of a step; VSW_STATE_UNKNOWN for none. */
uint32_t vsw_failed_state(uint32_t step);
/* Name to number; -1 when unknown. */
int vsw_failure_from_name(const char *name);
int vsw_step_from_name(const char *name);
int vsw_class_from_name(const char *name);
int vsw_backup_type_from_name(const char *name);

/*
 * Incoming bytes, split into messages at NUL bytes. A message longer than
 * VSW_WIRE_MAX_MESSAGE cannot be framed any more: the reader says so, and
 * the connection must be closed.
 */
struct vsw_reader {
	char *buf;
	size_t len;		/* bytes held */
	size_t cap;
	size_t start;		/* where the next message begins */
	bool eof;
};

void vsw_reader_init(struct vsw_reader *r);
void vsw_reader_free(struct vsw_reader *r);
/*
 * Reads what @fd has now (non-blocking or after poll). Returns bytes read
 * (0 at end of stream, setting r->eof), or a negative errno (-EAGAIN when
 * nothing is there).
 */
ssize_t vsw_reader_fill(struct vsw_reader *r, int fd);
/* Appends bytes as if read; for tests. Returns 0 or -ENOMEM. */
int vsw_reader_feed(struct vsw_reader *r, const void *data, size_t len);
/*
 * The next complete message: 1 with *msg pointing at its text (NUL
 * terminated, valid until the next call), 0 when more bytes are needed,
 * -EMSGSIZE when the pending message is already too long.
 */
int vsw_reader_next(struct vsw_reader *r, const char **msg, size_t *len);

/* Bytes waiting to be written. */
struct vsw_writebuf {
	char *data;
	size_t len;
	size_t off;
	size_t cap;
};

void vsw_writebuf_free(struct vsw_writebuf *w);
int vsw_writebuf_append(struct vsw_writebuf *w, const char *data, size_t len);
static inline size_t vsw_writebuf_pending(const struct vsw_writebuf *w)
{
	return w->len - w->off;
}
/* Writes what it can; returns 0 (maybe with bytes left), or -errno. */
int vsw_writebuf_flush(struct vsw_writebuf *w, int fd);

/* A decoded message. */
enum vsw_msg_kind {
	VSW_MSG_CALL = 1,
	VSW_MSG_REPLY = 2,
	VSW_MSG_ERROR = 3,
};

struct vsw_msg {
	enum vsw_msg_kind kind;
	struct json_object *root;	/* owns everything below */
	const char *method;		/* call */
	const char *error;		/* error */
	struct json_object *parameters;	/* never NULL: {} when absent */
	bool more;			/* call: wants several replies */
	bool oneway;			/* call: wants none */
	bool continues;			/* reply: more follow */
};

/*
 * Parses one message. On failure returns -EBADMSG with @why saying what is
 * wrong ("not JSON: unexpected end of data at byte 12", "\"method\" is not
 * a string").
 */
int vsw_msg_parse(const char *text, size_t len, struct vsw_msg *out,
		  char *why, size_t why_len);
void vsw_msg_free(struct vsw_msg *m);

/*
 * Serialized messages: a malloc'd text with its terminating NUL counted in
 * *len. @params is consumed (NULL means {}). NULL on allocation failure.
 */
char *vsw_msg_call(const char *method, struct json_object *params,
		   bool more, bool oneway, size_t *len);
char *vsw_msg_reply(struct json_object *params, bool continues, size_t *len);
char *vsw_msg_error(const char *error, struct json_object *params, size_t *len);
/* An error whose parameters are {"message": MESSAGE} and, if given,
 * {"parameter": PARAMETER}. */
char *vsw_msg_error_text(const char *error, const char *parameter,
			 const char *message, size_t *len);

/*
 * Typed access to parameters. Each returns 0, -ENOENT when the key is
 * absent (and not required: the output is left alone), or -EINVAL with
 * @why naming the key and what is wrong with it.
 */
int vsw_get_string(struct json_object *obj, const char *key, bool required,
		   size_t max_len, const char **out, char *why, size_t why_len);
int vsw_get_uint(struct json_object *obj, const char *key, bool required,
		 uint64_t max, uint64_t *out, char *why, size_t why_len);
int vsw_get_bool(struct json_object *obj, const char *key, bool required,
		 bool *out, char *why, size_t why_len);
int vsw_get_array(struct json_object *obj, const char *key, bool required,
		  size_t max_items, struct json_object **out, char *why,
		  size_t why_len);
int vsw_get_object(struct json_object *obj, const char *key, bool required,
		   struct json_object **out, char *why, size_t why_len);

/* Whether @text is a canonical lower- or upper-case UUID. */
bool vsw_is_uuid(const char *text);
/* A random (version 4) UUID in text form. Returns 0 or -errno. */
int vsw_random_uuid(char out[VSW_ID_STRLEN]);
/* Whether @text is printable UTF-8 without control characters. */
bool vsw_is_clean_text(const char *text);

/* Monotonic and real time in nanoseconds. */
uint64_t vsw_now_ns(void);
uint64_t vsw_realtime_ns(void);

#endif /* VSS_WIRE_H */
