/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin API: requests from anvilctl on the ipc socket (one API_REQUEST frame, one
 * API_RESPONSE frame; a DEALER client). Replies go out only after the batch holding the
 * request's writes is committed.
 *
 * apply takes the manifest text and its file name and does all parsing here, so every
 * error names FILE:LINE:COLUMN from the coordinator's own view; the documents of one apply
 * land atomically (a store group), and are merged into live objects as kubectl apply does
 * (three-way, against the last applied configuration kept in an annotation).
 */
#pragma once

#include "manager.h"

int api_on_request(void *zsock, void *userdata);

/* The operation behind `anvilctl apply`; exposed for tests. Fills resp (ok, message,
 * problems). */
int api_apply(Manager *m, const char *file, const char *content, Obj *resp);
/* The same into namespace ns (anvilctl apply -n NS); NULL as api_apply. */
int api_apply_in(Manager *m, const char *file, const char *content, const char *ns, Obj *resp);

/* What get and watch show of an object: secrets redacted, a Host's liveness from memory. */
void api_prepare_output(Manager *m, const KindInfo *k, Obj *o);

/* describe: text for one object, and the tree of a whole cluster. */
int describe_object(Manager *m, const KindInfo *k, const char *ns, const char *name,
                    char **ret);
int describe_cluster(Manager *m, const char *ns, const char *name, char **ret);

/* get kubeconfig: an admin kubeconfig signed by the cluster CA. */
int kubeconfig_for_cluster(Manager *m, const char *ns, const char *name, char **ret,
                           char **ret_error);

#define LAST_APPLIED_ANNOTATION "anvil.dev/last-applied-configuration"
