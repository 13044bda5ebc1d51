// SPDX-License-Identifier: LGPL-2.1-or-later
#include "mountinfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
					(s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = 0;
}

/* Is @dir the path itself or one of its ancestors? */
static size_t prefix_len(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return 1;
	if (strncmp(dir, path, n) || (path[n] && path[n] != '/'))
		return 0;
	return n;
}

static int copy(char *dst, size_t len, const char *src)
{
	if (strlen(src) >= len)
		return -ENAMETOOLONG;
	strcpy(dst, src);
	return 0;
}

/*
 * One line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE
 * SOURCE SUPEROPTS". Fills @out when the line parses.
 */
static int parse_line(char *line, struct vss_mount_of *out)
{
	char *field[6], *save = NULL, *tok, *type, *source;
	unsigned int maj, min, i;

	line[strcspn(line, "\n")] = 0;
	for (i = 0, tok = strtok_r(line, " ", &save); tok && i < 6;
	     tok = strtok_r(NULL, " ", &save))
		field[i++] = tok;
	if (i < 6)
		return -EINVAL;
	while (tok && strcmp(tok, "-"))
		tok = strtok_r(NULL, " ", &save);
	type = tok ? strtok_r(NULL, " ", &save) : NULL;
	source = type ? strtok_r(NULL, " ", &save) : NULL;
	if (!source || sscanf(field[2], "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	unescape(field[3]);
	unescape(field[4]);
	unescape(source);
	out->dev = makedev(maj, min);
	if (copy(out->fs_root, sizeof(out->fs_root), field[3]) ||
	    copy(out->mount_point, sizeof(out->mount_point), field[4]) ||
	    copy(out->fs_type, sizeof(out->fs_type), type) ||
	    copy(out->source, sizeof(out->source), source))
		return -ENAMETOOLONG;
	return 0;
}

int vss_mount_of_path(const char *path, const char *mountinfo,
		      struct vss_mount_of *out)
{
	char real[PATH_MAX], line[4 * PATH_MAX];
	struct vss_mount_of cur, best;
	size_t best_len = 0, n;
	const char *tail;
	bool found = false;
	FILE *f;
	int ret;

	if (!realpath(path, real))
		return -errno;
	f = fopen(mountinfo ? mountinfo : "/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	/* Later mounts hide earlier ones on the same point: the last wins. */
	while (fgets(line, sizeof(line), f)) {
		if (parse_line(line, &cur))
			continue;
		n = prefix_len(cur.mount_point, real);
		if (n && n >= best_len) {
			best = cur;
			best_len = n;
			found = true;
		}
	}
	fclose(f);
	if (!found)
		return -EINVAL;
	tail = real + (best_len == 1 ? 0 : best_len);
	if (!strcmp(best.fs_root, "/"))
		ret = snprintf(best.rel_path, sizeof(best.rel_path), "%s",
			       *tail ? tail : "/");
	else
		ret = snprintf(best.rel_path, sizeof(best.rel_path), "%s%s",
			       best.fs_root, tail);
	if (ret < 0 || (size_t)ret >= sizeof(best.rel_path))
		return -ENAMETOOLONG;
	*out = best;
	return 0;
}

int vss_path_in_image(const char *image_root, const char *rel_path,
		      char *out, size_t len)
{
	size_t root_len = strlen(image_root);
	int ret;

	while (root_len > 1 && image_root[root_len - 1] == '/')
		root_len--;
	ret = snprintf(out, len, "%.*s%s", (int)root_len, image_root,
		       strcmp(rel_path, "/") ? rel_path : "");
	if (ret < 0 || (size_t)ret >= len)
		return -ENAMETOOLONG;
	if (!*out)
		return copy(out, len, "/");
	return 0;
}
