/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A machine's identity as it enrolls: its product UUID (the Host's identity, and its node's
 * provider ID anvil://UUID) and its host name (the Host's name and the Kubernetes node
 * name). Both sides check them: the agent before it says anything, the coordinator before
 * it names anything after them. Pure functions, no allocation.
 */
#pragma once

#include <stdbool.h>

/* A UUID in its canonical text form (libuuid's uuid_parse: 8-4-4-4-12 hex digits); with
 * lowercase_only, as the agent reports it (the coordinator keeps one spelling per machine). */
bool product_uuid_valid(const char *s, bool lowercase_only);

/* A DNS-1123 subdomain, as Kubernetes requires of node names: at most 253 characters of
 * lowercase letters, digits, '-' and '.', each dot-separated label starting and ending with
 * a letter or digit, at most 63 characters. */
bool hostname_valid(const char *s);
