/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "macro.h"
#include "pki.h"

#define CA_DAYS 3650
#define RSA_BITS 2048

void pem_pair_done(PemPair *p) {
        if (p->key)
                sodium_memzero(p->key, strlen(p->key));
        free(p->cert);
        free(p->key);
        p->cert = p->key = NULL;
}

static char *bio_to_string(BIO *b) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        if (n < 0)
                return NULL;
        char *s = malloc((size_t)n + 1);
        if (!s)
                return NULL;
        memcpy(s, data, (size_t)n);
        s[n] = 0;
        return s;
}

static char *key_to_pem(EVP_PKEY *k, bool private_key) {
        BIO *b = BIO_new(BIO_s_mem());
        if (!b)
                return NULL;
        int ok = private_key ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                             : PEM_write_bio_PUBKEY(b, k);
        char *s = ok ? bio_to_string(b) : NULL;
        BIO_free(b);
        return s;
}

static char *cert_to_pem(X509 *c) {
        BIO *b = BIO_new(BIO_s_mem());
        if (!b)
                return NULL;
        char *s = PEM_write_bio_X509(b, c) ? bio_to_string(b) : NULL;
        BIO_free(b);
        return s;
}

static X509 *cert_from_pem(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        if (!b)
                return NULL;
        X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        return c;
}

static EVP_PKEY *key_from_pem(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        if (!b)
                return NULL;
        EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        return k;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ex)
                return -EINVAL;
        int ok = X509_add_ext(cert, ex, -1);
        X509_EXTENSION_free(ex);
        return ok ? 0 : -ENOMEM;
}

static int random_serial(X509 *c) {
        unsigned char buf[16];
        if (RAND_bytes(buf, sizeof(buf)) != 1)
                return -EIO;
        buf[0] &= 0x7f; /* positive */
        BIGNUM *bn = BN_bin2bn(buf, sizeof(buf), NULL);
        if (!bn)
                return -ENOMEM;
        ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        if (!ai)
                return -ENOMEM;
        int ok = X509_set_serialNumber(c, ai);
        ASN1_INTEGER_free(ai);
        return ok ? 0 : -ENOMEM;
}

static int set_name(X509_NAME *n, const char *cn, const char *o) {
        if (o && !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)o, -1,
                                             -1, 0))
                return -EINVAL;
        if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                        0))
                return -EINVAL;
        return 0;
}

/* Builds and signs a certificate for key; issuer NULL = self-signed CA. */
static int make_cert(EVP_PKEY *key, const char *cn, const char *org, bool is_ca, X509 *issuer,
                     EVP_PKEY *issuer_key, int days, X509 **ret) {
        X509 *c = X509_new();
        if (!c)
                return -ENOMEM;
        int r = 0;
        if (!X509_set_version(c, 2) || random_serial(c) < 0 || !X509_set_pubkey(c, key) ||
            set_name(X509_get_subject_name(c), cn, org) < 0)
                r = -EINVAL;
        /* Backdate an hour against clock skew between coordinator and hosts. */
        if (r == 0 && (!X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
                       !X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400)))
                r = -EINVAL;
        if (r == 0 && !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer)
                                                      : X509_get_subject_name(c)))
                r = -EINVAL;
        X509 *iss = issuer ? issuer : c;
        if (r == 0 && is_ca) {
                if (add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
                    add_ext(c, iss, NID_key_usage,
                            "critical,digitalSignature,keyEncipherment,keyCertSign") < 0 ||
                    add_ext(c, iss, NID_subject_key_identifier, "hash") < 0)
                        r = -EINVAL;
        } else if (r == 0) {
                if (add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
                    add_ext(c, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") <
                            0 ||
                    add_ext(c, iss, NID_ext_key_usage, "clientAuth") < 0 ||
                    add_ext(c, iss, NID_authority_key_identifier, "keyid:always") < 0)
                        r = -EINVAL;
        }
        if (r == 0 && !X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
                r = -EIO;
        if (r < 0) {
                X509_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int pki_make_ca(const char *common_name, PemPair *ret) {
        EVP_PKEY *k = EVP_RSA_gen(RSA_BITS);
        if (!k)
                return -EIO;
        X509 *c = NULL;
        int r = make_cert(k, common_name, NULL, true, NULL, NULL, CA_DAYS, &c);
        if (r >= 0) {
                ret->cert = cert_to_pem(c);
                ret->key = key_to_pem(k, true);
                if (!ret->cert || !ret->key) {
                        pem_pair_done(ret);
                        r = -ENOMEM;
                }
        }
        X509_free(c);
        EVP_PKEY_free(k);
        return r;
}

int pki_make_keypair(PemPair *ret) {
        EVP_PKEY *k = EVP_RSA_gen(RSA_BITS);
        if (!k)
                return -EIO;
        ret->cert = key_to_pem(k, false);
        ret->key = key_to_pem(k, true);
        EVP_PKEY_free(k);
        if (!ret->cert || !ret->key) {
                pem_pair_done(ret);
                return -ENOMEM;
        }
        return 0;
}

int pki_make_client_cert(const PemPair *ca, const char *common_name, const char *organization,
                         int days, PemPair *ret) {
        X509 *cac = cert_from_pem(ca->cert);
        EVP_PKEY *cak = key_from_pem(ca->key);
        EVP_PKEY *k = EVP_RSA_gen(RSA_BITS);
        X509 *c = NULL;
        int r = cac && cak && k ? 0 : -EINVAL;
        if (r == 0)
                r = make_cert(k, common_name, organization, false, cac, cak, days, &c);
        if (r == 0) {
                ret->cert = cert_to_pem(c);
                ret->key = key_to_pem(k, true);
                if (!ret->cert || !ret->key) {
                        pem_pair_done(ret);
                        r = -ENOMEM;
                }
        }
        X509_free(c);
        X509_free(cac);
        EVP_PKEY_free(cak);
        EVP_PKEY_free(k);
        return r;
}

int pki_ca_cert_hash(const char *cert_pem, char *buf, size_t bufsz) {
        X509 *c = cert_from_pem(cert_pem);
        if (!c)
                return -EINVAL;
        unsigned char *der = NULL;
        int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &der);
        X509_free(c);
        if (n <= 0)
                return -EINVAL;
        unsigned char h[crypto_hash_sha256_BYTES];
        char hex[2 * crypto_hash_sha256_BYTES + 1];
        crypto_hash_sha256(h, der, (unsigned long long)n);
        OPENSSL_free(der);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        snprintf(buf, bufsz, "sha256:%s", hex);
        return 0;
}

int pki_verify(const char *ca_pem, const char *cert_pem) {
        X509 *ca = cert_from_pem(ca_pem), *c = cert_from_pem(cert_pem);
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int r = -EINVAL;
        if (ca && c && st && ctx && X509_STORE_add_cert(st, ca) &&
            X509_STORE_CTX_init(ctx, st, c, NULL))
                r = X509_verify_cert(ctx) == 1 ? 0 : -EBADMSG;
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(st);
        X509_free(ca);
        X509_free(c);
        return r;
}
