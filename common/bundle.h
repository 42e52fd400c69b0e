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
 */
#pragma once

#include "obj.h"
#include "schema.h"

#define BUNDLE_API_VERSION "anvil.dev/v1alpha1"
#define BUNDLE_KIND        "BootstrapBundle"
#define BUNDLE_MAX_SIZE    (2U << 20)

extern const SchemaField bundle_fields[];

/* Parses and validates bundle text (YAML). On -EBADMSG, err names the field. */
int bundle_parse(const char *text, size_t size, Obj **ret, char *err, size_t errsz);

typedef struct BundleVars {
        const char *hostname;
        const char *uuid;
        const char *machine;
} BundleVars;

/* Replaces the placeholders above; unknown {{ ... }} are left alone. */
char *bundle_substitute(const char *text, const BundleVars *vars);
