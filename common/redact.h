/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redaction of secrets in free text that Anvil does not control, such as a command's output
 * before it reaches the journal or a Host's status: kubeadm prints the bootstrap token of the
 * join command and the certificate key of `--upload-certs`. What is recognised:
 *   [a-z0-9]{6}.[a-z0-9]{16}   kubeadm bootstrap token: the secret half goes, the id stays
 *   [a-z0-9]{6}.[a-z0-9]{32}   Anvil enrollment token: likewise
 *   64 hex digits              a certificate key, unless it is a "sha256:" CA hash (public)
 *   $ID$SALT$HASH              a crypt(3) password hash (a KubeadmConfig user's passwd, or
 *                              /etc/shadow printed by a command): ID is 1 to 8 of [a-z0-9],
 *                              the rest at least 13 of [./A-Za-z0-9$=,]; all of it goes (a
 *                              traditional DES hash has no mark to be told apart by)
 * Anything else secret must never be printed in the first place.
 */
#pragma once

#include <stddef.h>

#define REDACTED "<redacted>"

/* Redacts line[0..n) in place (the result is never longer); returns the new length. The
 * buffer need not be NUL-terminated; if it is, the terminator moves with the text. */
size_t redact_secrets(char *line, size_t n);
