/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <uuid/uuid.h>

#include "hostid.h"

bool product_uuid_valid(const char *s, bool lowercase_only) {
        uuid_t u;
        if (!s || strlen(s) != 36 || uuid_parse(s, u) < 0)
                return false;
        if (lowercase_only)
                for (const char *p = s; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                return false;
        return true;
}

static bool alnum_lower(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool hostname_valid(const char *s) {
        if (!s || !*s || strlen(s) > 253)
                return false;
        size_t label = 0;
        for (const char *p = s; *p; p++) {
                char c = *p;
                if (c == '.') {
                        /* A label ends with a letter or digit (and is not empty). */
                        if (label == 0 || !alnum_lower(p[-1]))
                                return false;
                        label = 0;
                        continue;
                }
                if (!alnum_lower(c) && !(c == '-' && label > 0))
                        return false;
                if (++label > 63)
                        return false;
        }
        return label > 0 && alnum_lower(s[strlen(s) - 1]);
}
