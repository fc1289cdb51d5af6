/* Unit tests for util/esc: control bytes, backslashes and broken UTF-8 as escapes, valid
 * UTF-8 untouched, and cutting at whole escapes. */
#include "check.h"
#include "util/esc.h"

#include <string.h>

static void expect(const char *in, const char *want)
{
	char out[128];

	esc_str(out, sizeof out, in);
	CHECK(!strcmp(out, want), "got '%s', want '%s'", out, want);
}

int main(void)
{
	char small[8];

	expect("images/a.jpg", "images/a.jpg");
	expect("", "");
	expect(NULL, "");
	expect("a\033[2Jb", "a\\x1b[2Jb");
	expect("line\r\nfake: ok", "line\\x0d\\x0afake: ok");
	expect("\x01\x1f\x7f", "\\x01\\x1f\\x7f");
	expect("C:\\x1b", "C:\\\\x1b");              /* a literal "\x1b" is not an escape */
	expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x95", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x95");
	expect("\xc2\x9b" "31m", "\\xc2\\x9b31m");    /* C1 CSI in UTF-8 */
	expect("\x9b" "31m", "\\x9b31m");             /* a bare 8-bit CSI */
	expect("\xc3", "\\xc3");                      /* truncated sequence */
	expect("\xc0\xaf", "\\xc0\\xaf");             /* overlong '/' */
	expect("\xed\xa0\x80", "\\xed\\xa0\\x80");    /* surrogate */
	expect("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
	esc_str(small, sizeof small, "ab\033cd");
	CHECK(!strcmp(small, "ab\\x1bc"), "fits 7: '%s'", small);
	esc_str(small, sizeof small, "abcde\033");
	CHECK(!strcmp(small, "abcde"), "an escape is never cut: '%s'", small);
	esc_str(small, sizeof small, "abcde\xc3\xa9");
	CHECK(!strcmp(small, "abcde\xc3\xa9"), "a character that fits: '%s'", small);
	esc_str(small, sizeof small, "abcdef\xc3\xa9");
	CHECK(!strcmp(small, "abcdef"), "a character is never cut: '%s'", small);
	CHECK(esc_str(small, sizeof small, "x") == small, "returns out");
	return check_done("test_esc");
}
