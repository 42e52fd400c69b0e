/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resource kinds Anvil serves, in Cluster API v1beta1 shape: one KindInfo per kind with
 * its group/version, names (plural, singular, short names as kubectl knows them), scope, and
 * the schema tables of its spec and status. Validation of a whole document (apiVersion, kind,
 * metadata, spec; status is controller-owned) is generic and driven by these tables.
 */
#pragma once

#include "schema.h"

typedef struct KindInfo KindInfo;

struct KindInfo {
        const char *group;              /* "cluster.x-k8s.io", "" for core */
        const char *version;            /* "v1beta1" */
        const char *kind;               /* "MachineDeployment" */
        const char *plural;             /* "machinedeployments" */
        const char *singular;           /* "machinedeployment" */
        const char *const *short_names; /* "md" */
        bool namespaced;
        bool spec_required;
        bool encrypt_at_rest; /* body sealed with the store's data key (Secrets) */
        const SchemaField *spec;
        const SchemaField *status;
        const SchemaField *extra; /* other top-level fields (Secret: type, data, stringData) */
        /* Cross-field checks beyond the tables; adds problems, returns <0 only on OOM. */
        int (*validate)(const Obj *doc, Problems *p);
        /* Defaults that need more than a table default (e.g. whole nested objects), as
         * Cluster API's defaulting webhooks fill them. Run after validation. */
        int (*defaults)(Obj *doc);
        /* Checks of a change (old is the live object, new the merged and defaulted one),
         * beyond SF_IMMUTABLE fields: what Cluster API's webhooks refuse on update. Problems
         * carry paths into new; returns <0 only on OOM. */
        int (*validate_update)(const Obj *old, const Obj *new, Problems *p);
        const char *doc; /* one paragraph for docs/resources.md and `anvilctl explain` */
};

/* Anvil's choice of upgrade strategy on a MachineDeployment or KubeadmControlPlane:
 * "InPlace" (kubeadm upgrade on the machines where they stand) or "Replace" (Cluster API's
 * rolling replacement, the default). See docs/upgrades.md. */
#define ANNOTATION_UPGRADE_STRATEGY "anvil.dev/upgrade-strategy"
/* Checks the annotation's value on a manifest; adds a problem when it is not one of the two. */
int kind_check_upgrade_strategy(const Obj *doc, Problems *p);

/* All kinds, NULL-terminated. */
extern const KindInfo *const anvil_kinds[];

/* By exact Kind name ("Machine"). */
const KindInfo *kind_lookup(const char *kind);
/* By any name an operator may type: kind, plural, singular, short name, any case, and
 * optionally with a group suffix ("machines.cluster.x-k8s.io"). */
const KindInfo *kind_resolve(const char *name);
/* "cluster.x-k8s.io/v1beta1" */
const char *kind_api_version(const KindInfo *k, char *buf, size_t bufsz);

/* Schema of metadata as accepted on apply. */
extern const SchemaField metadata_fields[];

/*
 * Validates one manifest document. Problems carry marks from the document and paths from its
 * root ("spec.replicas"). Returns the kind through ret_kind when apiVersion/kind are usable.
 */
int kind_validate_document(const Obj *doc, const KindInfo **ret_kind, Problems *p);

/* Label selectors (metav1.LabelSelector): matchLabels and matchExpressions with In, NotIn,
 * Exists, DoesNotExist. A missing or empty selector matches everything. -EINVAL when the
 * selector itself is malformed. */
int label_selector_matches(const Obj *selector, const Obj *labels);
/* kubectl's -l syntax: "a=b,c!=d,e in (x,y),!f,g". Builds a LabelSelector Obj. */
int label_selector_parse(const char *s, Obj **ret);
/* Renders a selector as kubectl prints it ("role=worker,rack in (r1,r2)"). */
char *label_selector_to_string(const Obj *selector);

/* Shared sub-schemas. */
extern const SchemaField object_reference_fields[];
extern const SchemaField label_selector_fields[];
extern const SchemaField condition_fields[];
extern const SchemaField template_metadata_fields[];

/* Named sub-schemas that appear in several kinds; documentation describes them once. */
typedef struct SchemaTypeName {
        const char *name; /* "ObjectReference" */
        const SchemaField *fields;
        const char *doc;
} SchemaTypeName;
extern const SchemaTypeName anvil_schema_types[];
const char *schema_type_name(const SchemaField *fields);

/* Checks shared by the kind tables (kinds-*.c). */
const char *check_label_value(const Obj *v, char *buf, size_t bufsz);
/* Version strings as Cluster API's webhooks take them: "1.30.2" is "v1.30.2". Prepends the
 * "v" at path when missing. */
int default_version_prefix(Obj *doc, const char *path);
/* Sets the namespace of the reference at path to the object's when it has none (webhooks). */
int default_ref_namespace(Obj *doc, const char *path);
/* The cluster-name label on the object itself, from spec.clusterName. */
int default_cluster_name_label(Obj *doc, const char *labels_path);
/* A reference Anvil follows: kind and name present, kind one of kinds, apiVersion (when
 * given) the one Anvil serves for it, namespace (when given) the object's own. */
int check_ref(const Obj *doc, const char *path, const char *const *kinds, Problems *p);
/* Each string item of list that check refuses, as a problem at the item's own mark and
 * path "PATH[i]" (a table's check sees the whole list, so it could only name the list). */
int check_items(const Obj *list, const char *path, SchemaCheck check, Problems *p);
/* The object's namespace as it will be stored ("default" when absent). */
const char *doc_namespace(const Obj *doc);
