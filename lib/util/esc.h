/* esc: text that comes from outside (archive entry names, servers' replies, URLs) made safe
 * to print in a message: it can no longer move the cursor, clear the screen or fake a line. */
#ifndef PETCNN_ESC_H
#define PETCNN_ESC_H

#include <stddef.h>

/* Copies s into out (n bytes, always NUL-terminated) with every control byte (C0, DEL),
 * every C1 control in UTF-8 and every byte that is not part of valid UTF-8 written as \xHH,
 * and '\' as "\\", so the escaped text reads back unambiguously. Valid UTF-8 passes as it
 * is. What does not fit is cut at a whole character or escape. Returns out, so a call can
 * be a printf argument; s NULL gives "". */
const char *esc_str(char *out, size_t n, const char *s);

#endif
