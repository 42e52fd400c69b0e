/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <string.h>

#include "redact.h"

static bool is_tok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t run(const char *s, size_t i, size_t n, bool (*pred)(char)) {
        size_t j = i;
        while (j < n && pred(s[j]))
                j++;
        return j - i;
}

/* Replaces s[at..at+len) with REDACTED (len >= strlen(REDACTED)); returns the new n. */
static size_t replace(char *s, size_t n, size_t at, size_t len) {
        size_t r = strlen(REDACTED);
        memcpy(s + at, REDACTED, r);
        memmove(s + at + r, s + at + len, n - at - len);
        return n - len + r;
}

static bool is_crypt(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '/' || c == '$' || c == '=' || c == ',';
}

/* The length of a crypt(3) hash "$ID$..." at s[i] (s[i] == '$'), or 0. */
static size_t crypt_hash_at(const char *s, size_t i, size_t n) {
        size_t id = run(s, i + 1, n, is_tok);
        if (id < 1 || id > 8 || i + 1 + id >= n || s[i + 1 + id] != '$')
                return 0;
        size_t rest = run(s, i + 2 + id, n, is_crypt);
        return rest >= 13 ? 2 + id + rest : 0;
}

size_t redact_secrets(char *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                /* At a "$" that does not continue a word ("x=$6$..." does not). */
                if (s[i] == '$' && (i == 0 || !is_crypt(s[i - 1]) || strchr("=,", s[i - 1]))) {
                        size_t h = crypt_hash_at(s, i, n);
                        if (h) {
                                n = replace(s, n, i, h);
                                i += strlen(REDACTED);
                                continue;
                        }
                }
                if (!is_hex(s[i]) && !is_tok(s[i])) {
                        i++;
                        continue;
                }
                /* At the start of a word. */
                size_t t = run(s, i, n, is_tok);
                if (t == 6 && i + 6 < n && s[i + 6] == '.') {
                        size_t sec = run(s, i + 7, n, is_tok);
                        if (sec == 16 || sec == 32) {
                                n = replace(s, n, i + 7, sec);
                                i += 7 + strlen(REDACTED);
                                continue;
                        }
                }
                size_t h = run(s, i, n, is_hex);
                if (h == 64 && !(i >= 7 && strncmp(s + i - 7, "sha256:", 7) == 0)) {
                        n = replace(s, n, i, h);
                        i += strlen(REDACTED);
                        continue;
                }
                /* Skip the rest of this word. */
                size_t w = t > h ? t : h;
                i += w ? w : 1;
        }
        return n;
}
