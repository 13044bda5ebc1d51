// SPDX-License-Identifier: GPL-2.0
/*
 * Sizes: what vss_parse_size() accepts and refuses, what
 * vss_format_size() prints, and vssctl's storage limits (sizes or N%).
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "vssctl.h"

static void accepts(const char *text, uint64_t want)
{
	uint64_t got = 0;
	int err = vss_parse_size(text, &got);

	if (!t_ok(err == 0 && got == want, "parse_size(\"%s\") = %llu", text,
		  (unsigned long long)want))
		t_diag("err %d, got %llu", err, (unsigned long long)got);
}

static void refuses(const char *text)
{
	uint64_t got = 12345;
	int err = vss_parse_size(text, &got);

	t_ok(err == -EINVAL && got == 12345, "parse_size(\"%s\") refused, output untouched",
	     text ? text : "(null)");
}

static void formats(uint64_t bytes, const char *want)
{
	char buf[16], what[64];

	snprintf(what, sizeof(what), "format_size(%llu)", (unsigned long long)bytes);
	t_str_eq(vss_format_size(bytes, buf, sizeof(buf)), want, what);
}

int main(void)
{
	struct vssctl_limit limit;
	char tiny[4];

	accepts("0", 0);
	accepts("4096", 4096);
	accepts("64K", 64 * 1024);
	accepts("64k", 64 * 1024);
	accepts("64KiB", 64 * 1024);
	accepts("64kib", 64 * 1024);
	accepts("1M", 1024 * 1024);
	accepts("1m", 1024 * 1024);
	accepts("2G", UINT64_C(2) << 30);
	accepts("2g", UINT64_C(2) << 30);
	accepts("1T", UINT64_C(1) << 40);
	accepts("1t", UINT64_C(1) << 40);
	accepts("3P", UINT64_C(3) << 50);
	accepts("15E", UINT64_C(15) << 60);
	accepts("18446744073709551615", UINT64_MAX);
	accepts("007", 7);

	refuses(NULL);
	refuses("");
	refuses("12Q");
	refuses("-1");
	refuses("+1");
	refuses(" 1");
	refuses("1 ");
	refuses("1.5G");
	refuses("G");
	refuses("1KB");
	refuses("1Ki");
	refuses("1KiBs");
	refuses("1iB");
	refuses("0x10");
	refuses("18446744073709551616");
	refuses("16E");
	refuses("17179869184G");

	formats(0, "0B");
	formats(512, "512B");
	formats(1023, "1023B");
	formats(1024, "1KiB");
	formats(64 * 1024, "64KiB");
	formats(1536, "1.5KiB");
	formats(1025, "1.0KiB");
	formats(UINT64_C(3) << 29, "1.5GiB");
	formats(UINT64_C(1) << 40, "1TiB");
	formats(UINT64_MAX, "15.9EiB");
	t_str_eq(vss_format_size(UINT64_C(1) << 30, tiny, sizeof(tiny)), "1Gi",
		 "format_size truncates into a small buffer");

	t_ok(vssctl_parse_limit("10G", &limit) == 0 && limit.given && !limit.percent &&
	     limit.bytes == UINT64_C(10) << 30, "limit 10G");
	t_ok(vssctl_parse_limit("20%", &limit) == 0 && limit.percent && limit.pct == 20,
	     "limit 20%%");
	t_ok(vssctl_parse_limit("100%", &limit) == 0 && limit.pct == 100, "limit 100%%");
	t_ok(vssctl_parse_limit("0%", &limit) == -EINVAL, "limit 0%% refused");
	t_ok(vssctl_parse_limit("101%", &limit) == -EINVAL, "limit 101%% refused");
	t_ok(vssctl_parse_limit("1000000000000%", &limit) == -EINVAL,
	     "huge percentage refused without overflow");
	t_ok(vssctl_parse_limit("%", &limit) == -EINVAL, "bare %% refused");
	t_ok(vssctl_parse_limit("5.5%", &limit) == -EINVAL, "fractional %% refused");
	t_ok(vssctl_parse_limit("0", &limit) == -EINVAL, "zero limit refused");
	t_ok(vssctl_parse_limit("1X", &limit) == -EINVAL, "bad unit refused");
	return t_done();
}
