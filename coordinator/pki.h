/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster certificates, made with OpenSSL libcrypto as Cluster API's kubeadm control plane
 * provider makes them: a cluster CA, an etcd CA, a front-proxy CA (self-signed, 10 years,
 * RSA 2048) and a service account key pair. kubeadm on the first control plane host finds
 * them in /etc/kubernetes/pki and signs everything else from them, so the coordinator can
 * later sign an admin client certificate for `anvilctl get kubeconfig`.
 */
#pragma once

#include <stddef.h>

typedef struct PemPair {
        char *cert; /* PEM certificate (for the SA pair: the PEM public key) */
        char *key;  /* PEM private key */
} PemPair;

void pem_pair_done(PemPair *p);

/* A self-signed CA with the given common name. */
int pki_make_ca(const char *common_name, PemPair *ret);
/* An RSA key pair for service account tokens (cert = "PUBLIC KEY" PEM). */
int pki_make_keypair(PemPair *ret);
/* A client certificate signed by ca (organization may be NULL), valid for days. */
int pki_make_client_cert(const PemPair *ca, const char *common_name, const char *organization,
                         int days, PemPair *ret);
/* "sha256:<hex>" of the certificate's DER SubjectPublicKeyInfo: kubeadm's CA pin. */
int pki_ca_cert_hash(const char *cert_pem, char *buf, size_t bufsz);
/* Checks that cert_pem verifies against ca_pem (used by tests and describe). */
int pki_verify(const char *ca_pem, const char *cert_pem);
