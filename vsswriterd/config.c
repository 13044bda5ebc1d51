// SPDX-License-Identifier: GPL-2.0
/*
 * The configuration file; see config.h. An ini file:
 *
 *   [vsswriterd]
 *   requester-group = backup
 *   hook-dir = /etc/vss/writers.d
 *   qemu-ga-hook-dir = /etc/qemu/fsfreeze-hook.d
 *   hook-timeout = 30s
 *   step-timeout = 60s
 *   [writer pgwriter]
 *   user = postgres
 *   [hook 10-mysql]
 *   class = back-end
 *   timeout = 10s
 *   paths = /var/lib/mysql
 *
 * Names are resolved once, at load: never while something is frozen.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define LINE_LEN	8192

void wd_config_defaults(struct wd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->hook_dir, sizeof(c->hook_dir), "%s", WD_DEFAULT_HOOK_DIR);
	c->hook_class = VSW_CLASS_BACK_END;
	c->qemu_ga_hook_class = VSW_CLASS_BACK_END;
	c->hook_timeout_ms = 30000;
	c->step_timeout_ms = 60000;
	c->max_step_timeout_ms = 600000;
	c->hold_limit_ms = 10000;
	c->max_connections = 256;
}

static void free_list(char **items, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(items[i]);
	free(items);
}

void wd_config_free(struct wd_config *c)
{
	size_t i;

	for (i = 0; i < c->hook_count; i++) {
		free_list(c->hooks[i].paths, c->hooks[i].path_count);
		free_list(c->hooks[i].devices, c->hooks[i].device_count);
	}
	free(c->hooks);
	free(c->writers);
	c->hooks = NULL;
	c->writers = NULL;
	c->hook_count = c->writer_count = 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* "30s", "500ms", "2m" or bare milliseconds. */
static int parse_duration_ms(const char *text, uint32_t max, uint32_t *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (!isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	if (!strcmp(end, "ms") || !*end)
		mult = 1;
	else if (!strcmp(end, "s"))
		mult = 1000;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mult = 60000;
	else
		return -EINVAL;
	if (v == 0 || v > max / mult)
		return -ERANGE;
	*out = (uint32_t)(v * mult);
	return 0;
}

static int parse_uint(const char *text, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	*out = strtoul(text, &end, 10);
	if (errno || *end || *out > max)
		return -EINVAL;
	return 0;
}

static int lookup_uid(const char *text, uid_t *out)
{
	unsigned long n;
	struct passwd *pw;

	if (!parse_uint(text, 0xfffffffeUL, &n)) {
		*out = (uid_t)n;
		return 0;
	}
	pw = getpwnam(text);
	if (!pw)
		return -ENOENT;
	*out = pw->pw_uid;
	return 0;
}

static int lookup_gid(const char *text, gid_t *out)
{
	unsigned long n;
	struct group *gr;

	if (!parse_uint(text, 0xfffffffeUL, &n)) {
		*out = (gid_t)n;
		return 0;
	}
	gr = getgrnam(text);
	if (!gr)
		return -ENOENT;
	*out = gr->gr_gid;
	return 0;
}

/* Splits a blank-separated list into a fresh array. */
static int split_list(const char *text, char ***out, size_t *count)
{
	char *copy = strdup(text), *save = NULL, *tok;
	char **items = NULL, **grown;
	size_t n = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (n >= VSW_MAX_COMPONENT_ITEMS)
			goto too_many;
		grown = realloc(items, (n + 1) * sizeof(*items));
		if (!grown)
			goto nomem;
		items = grown;
		items[n] = strdup(tok);
		if (!items[n])
			goto nomem;
		n++;
	}
	free(copy);
	free_list(*out, *count);
	*out = items;
	*count = n;
	return 0;
too_many:
	free(copy);
	free_list(items, n);
	return -E2BIG;
nomem:
	free(copy);
	free_list(items, n);
	return -ENOMEM;
}

enum section { SEC_NONE, SEC_DAEMON, SEC_WRITER, SEC_HOOK };

struct parse_ctx {
	struct wd_config *c;
	const char *path;
	unsigned int line;
	char *why;
	size_t why_len;
	enum section section;
};

static int bad(struct parse_ctx *p, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct parse_ctx *p, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->why, p->why_len, "%s:%u: %s", p->path, p->line, msg);
	return err;
}

static int section_header(struct parse_ctx *p, char *text)
{
	char *close = strchr(text, ']'), *name;
	struct wd_config *c = p->c;
	void *grown;

	if (!close || trim(close + 1)[0])
		return bad(p, -EINVAL, "a section header is \"[name]\"");
	*close = '\0';
	text = trim(text + 1);
	if (!strcmp(text, "vsswriterd")) {
		p->section = SEC_DAEMON;
		return 0;
	}
	name = text + strcspn(text, " \t");
	if (*name)
		*name++ = '\0';
	name = trim(name);
	if (strcmp(text, "writer") && strcmp(text, "hook"))
		return bad(p, -EINVAL, "unknown section [%s]: expected [vsswriterd], [writer NAME] or [hook NAME]",
			   text);
	if (!*name || strlen(name) > VSW_NAME_MAX || !vsw_is_clean_text(name))
		return bad(p, -EINVAL, "[%s] needs a name of 1 to %d characters", text,
			   VSW_NAME_MAX);
	if (!strcmp(text, "writer")) {
		if (wd_config_writer(c, name))
			return bad(p, -EINVAL, "writer \"%s\" is configured twice", name);
		grown = realloc(c->writers, (c->writer_count + 1) * sizeof(*c->writers));
		if (!grown)
			return -ENOMEM;
		c->writers = grown;
		memset(&c->writers[c->writer_count], 0, sizeof(*c->writers));
		snprintf(c->writers[c->writer_count].name, sizeof(c->writers->name), "%s", name);
		/* No user yet: a writer section must say one. */
		c->writers[c->writer_count].uid = (uid_t)-1;
		c->writer_count++;
		p->section = SEC_WRITER;
	} else {
		if (wd_config_hook(c, name))
			return bad(p, -EINVAL, "hook \"%s\" is configured twice", name);
		grown = realloc(c->hooks, (c->hook_count + 1) * sizeof(*c->hooks));
		if (!grown)
			return -ENOMEM;
		c->hooks = grown;
		memset(&c->hooks[c->hook_count], 0, sizeof(*c->hooks));
		snprintf(c->hooks[c->hook_count].name, sizeof(c->hooks->name), "%s", name);
		c->hook_count++;
		p->section = SEC_HOOK;
	}
	return 0;
}

static int daemon_key(struct parse_ctx *p, const char *key, const char *value)
{
	struct wd_config *c = p->c;
	unsigned long n;
	int cls;

	if (!strcmp(key, "requester-group")) {
		if (!*value) {
			c->has_requester_group = false;
			return 0;
		}
		if (lookup_gid(value, &c->requester_gid))
			return bad(p, -ENOENT, "requester-group: no group \"%s\"", value);
		c->has_requester_group = true;
		return 0;
	}
	if (!strcmp(key, "hook-dir") || !strcmp(key, "qemu-ga-hook-dir")) {
		char *dst = key[0] == 'h' ? c->hook_dir : c->qemu_ga_hook_dir;

		if (*value && value[0] != '/')
			return bad(p, -EINVAL, "%s: \"%s\" is not an absolute path", key, value);
		if (strlen(value) >= VSW_WIRE_PATH_MAX)
			return bad(p, -EINVAL, "%s: path too long", key);
		snprintf(dst, VSW_WIRE_PATH_MAX, "%s", value);
		return 0;
	}
	if (!strcmp(key, "hook-class") || !strcmp(key, "qemu-ga-hook-class")) {
		cls = vsw_class_from_name(value);
		if (cls < 0)
			return bad(p, -EINVAL, "%s: \"%s\" is not front-end, back-end or system",
				   key, value);
		if (key[0] == 'h')
			c->hook_class = (uint32_t)cls;
		else
			c->qemu_ga_hook_class = (uint32_t)cls;
		return 0;
	}
	if (!strcmp(key, "hook-timeout") || !strcmp(key, "step-timeout") ||
	    !strcmp(key, "max-step-timeout")) {
		uint32_t *dst = !strcmp(key, "hook-timeout") ? &c->hook_timeout_ms :
				!strcmp(key, "step-timeout") ? &c->step_timeout_ms :
				&c->max_step_timeout_ms;

		if (parse_duration_ms(value, 24 * 3600 * 1000, dst))
			return bad(p, -EINVAL, "%s: \"%s\" is not a duration such as 30s or 500ms",
				   key, value);
		return 0;
	}
	if (!strcmp(key, "hold-limit")) {
		if (parse_duration_ms(value, 60000, &c->hold_limit_ms))
			return bad(p, -EINVAL, "hold-limit: \"%s\" is not a duration of 1ms to 60s",
				   value);
		return 0;
	}
	if (!strcmp(key, "max-connections")) {
		if (parse_uint(value, 65536, &n) || n < 4)
			return bad(p, -EINVAL, "max-connections: \"%s\" is not a number from 4 to 65536",
				   value);
		c->max_connections = (uint32_t)n;
		return 0;
	}
	return bad(p, -EINVAL, "unknown key \"%s\" in [vsswriterd]", key);
}

static int writer_key(struct parse_ctx *p, const char *key, const char *value)
{
	struct wd_writer_rule *w = &p->c->writers[p->c->writer_count - 1];

	if (!strcmp(key, "user")) {
		if (lookup_uid(value, &w->uid))
			return bad(p, -ENOENT, "user: no user \"%s\"", value);
		return 0;
	}
	return bad(p, -EINVAL, "unknown key \"%s\" in [writer %s]: expected user", key, w->name);
}

static int hook_key(struct parse_ctx *p, const char *key, const char *value)
{
	struct wd_hook_rule *h = &p->c->hooks[p->c->hook_count - 1];
	int cls, err;

	if (!strcmp(key, "class")) {
		cls = vsw_class_from_name(value);
		if (cls < 0)
			return bad(p, -EINVAL, "class: \"%s\" is not front-end, back-end or system",
				   value);
		h->writer_class = (uint32_t)cls;
		return 0;
	}
	if (!strcmp(key, "timeout")) {
		if (parse_duration_ms(value, 24 * 3600 * 1000, &h->timeout_ms))
			return bad(p, -EINVAL, "timeout: \"%s\" is not a duration", value);
		return 0;
	}
	if (!strcmp(key, "paths") || !strcmp(key, "devices")) {
		err = key[0] == 'p' ? split_list(value, &h->paths, &h->path_count) :
				      split_list(value, &h->devices, &h->device_count);
		if (err == -E2BIG)
			return bad(p, err, "%s: more than %d entries", key, VSW_MAX_COMPONENT_ITEMS);
		return err;
	}
	return bad(p, -EINVAL, "unknown key \"%s\" in [hook %s]: expected class, timeout, paths or devices",
		   key, h->name);
}

int wd_config_load(struct wd_config *c, const char *path, bool missing_ok,
		   char *why, size_t why_len)
{
	struct parse_ctx p = { .c = c, .path = path, .why = why, .why_len = why_len };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int err = 0;
	size_t i;

	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		if (err == -ENOENT && missing_ok)
			return 0;
		snprintf(why, why_len, "%s: %s", path, strerror(-err));
		return err;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *text, *eq;

		p.line++;
		if (n > LINE_LEN) {
			err = bad(&p, -EINVAL, "line longer than %d bytes", LINE_LEN);
			break;
		}
		text = trim(line);
		if (!*text || *text == '#' || *text == ';')
			continue;
		if (*text == '[') {
			err = section_header(&p, text);
			if (err)
				break;
			continue;
		}
		eq = strchr(text, '=');
		if (!eq) {
			err = bad(&p, -EINVAL, "expected KEY = VALUE");
			break;
		}
		*eq = '\0';
		switch (p.section) {
		case SEC_NONE:
			err = bad(&p, -EINVAL, "\"%s\" before any [section]", trim(text));
			break;
		case SEC_DAEMON:
			err = daemon_key(&p, trim(text), trim(eq + 1));
			break;
		case SEC_WRITER:
			err = writer_key(&p, trim(text), trim(eq + 1));
			break;
		case SEC_HOOK:
			err = hook_key(&p, trim(text), trim(eq + 1));
			break;
		}
		if (err)
			break;
	}
	free(line);
	fclose(f);
	if (err)
		return err;
	for (i = 0; i < c->writer_count; i++)
		if (c->writers[i].uid == (uid_t)-1) {
			snprintf(why, why_len, "%s: [writer %s] has no user", path,
				 c->writers[i].name);
			return -EINVAL;
		}
	if (c->max_step_timeout_ms < c->step_timeout_ms)
		c->max_step_timeout_ms = c->step_timeout_ms;
	return 0;
}

const struct wd_writer_rule *wd_config_writer(const struct wd_config *c,
					      const char *name)
{
	size_t i;

	for (i = 0; i < c->writer_count; i++)
		if (!strcmp(c->writers[i].name, name))
			return &c->writers[i];
	return NULL;
}

const struct wd_hook_rule *wd_config_hook(const struct wd_config *c,
					  const char *name)
{
	size_t i;

	for (i = 0; i < c->hook_count; i++)
		if (!strcmp(c->hooks[i].name, name))
			return &c->hooks[i];
	return NULL;
}
