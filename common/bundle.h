/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bootstrap bundle: what a host must do to become its Machine's node. The coordinator
 * renders it from the KubeadmConfig (kubeadm configuration, files, commands), stores it as
 * the Machine's bootstrap data Secret, and seals it to the claimed host's key; the agent
 * opens it, validates it against this schema and turns it into its step plan.
 *
 * Like cloud-init user data in Cluster API, the kubeadm configuration and the files may
 * carry placeholders the host fills in, so the same data works whichever host is claimed:
 *   {{ ds.meta_data.local_hostname }}, {{ ds.meta_data.hostname }}  the host's name
 *   {{ ds.meta_data.uuid }}, {{ ds.meta_data.instance_id }}          its product UUID
 *   {{ ds.meta_data.provider_id }}                                   anvil://<uuid>
 *   {{ ds.meta_data.name }}                                          the Machine's name
 *
 * Besides kubeadm, files and commands, a bundle may carry what cloud-init's users_groups and
 * ntp modules would apply for Cluster API (users, ntp) and kubeadm's verbosity
 * (kubeadm.verbosity). Their values end up in the argument vectors of useradd/usermod and in
 * /etc/passwd, /etc/sudoers.d and timesyncd.conf.d, so the checks below (shared with the
 * KubeadmConfig tables, which apply them at `anvilctl apply`) refuse what could change the
 * meaning of a line there: colons, newlines, a leading "-", relative paths.
 */
#pragma once

#include "obj.h"
#include "schema.h"

#define BUNDLE_API_VERSION "anvil.dev/v1alpha1"
#define BUNDLE_KIND        "BootstrapBundle"
#define BUNDLE_MAX_SIZE    (2U << 20)

extern const SchemaField bundle_fields[];

/* An account (user or group) name as shadow's tools take it and sudoers can name it: a
 * letter or "_", then letters, digits, ".", "_" or "-", at most 32 characters. NULL when
 * fine, else what is wrong. */
const char *bundle_account_name_problem(const char *s);
/* A list of group names separated by commas (spaces around them allowed, as cloud-init
 * strips them): each one an account name. */
const char *bundle_group_list_problem(const char *s);
/* One line: no newline or other control character. */
const char *bundle_line_problem(const char *s);
/* One line without ":" (a field of /etc/passwd or /etc/shadow: GECOS, a password hash). */
const char *bundle_account_field_problem(const char *s);
/* An absolute path without ":" or ".." (a home directory, a login shell). */
const char *bundle_account_path_problem(const char *s);
/* An NTP server: a host name or address, no spaces (timesyncd separates servers by spaces). */
const char *bundle_ntp_server_problem(const char *s);

/* The same, as SchemaCheck functions for field tables (a string value; else NULL). */
const char *bundle_check_account_name(const Obj *v, char *buf, size_t bufsz);
const char *bundle_check_group_list(const Obj *v, char *buf, size_t bufsz);
const char *bundle_check_line(const Obj *v, char *buf, size_t bufsz);
const char *bundle_check_account_field(const Obj *v, char *buf, size_t bufsz);
const char *bundle_check_account_path(const Obj *v, char *buf, size_t bufsz);
const char *bundle_check_ntp_server(const Obj *v, char *buf, size_t bufsz);

/* Parses and validates bundle text (YAML). On -EBADMSG, err names the field. */
int bundle_parse(const char *text, size_t size, Obj **ret, char *err, size_t errsz);

typedef struct BundleVars {
        const char *hostname;
        const char *uuid;
        const char *machine;
} BundleVars;

/* Replaces the placeholders above; unknown {{ ... }} are left alone. */
char *bundle_substitute(const char *text, const BundleVars *vars);
