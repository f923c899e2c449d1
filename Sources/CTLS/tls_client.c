#include "ctls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct corral_tls {
    SSL_CTX *context;
    SSL *ssl;
};

/// The reason OpenSSL gives last (its error queue, emptied), or `fallback`.
static void describe(const char *what, const char *fallback, char *error, size_t length) {
    unsigned long code = ERR_get_error();
    char reason[256];
    if (code != 0) {
        ERR_error_string_n(code, reason, sizeof(reason));
    } else {
        snprintf(reason, sizeof(reason), "%s", fallback);
    }
    ERR_clear_error();
    if (error && length > 0) snprintf(error, length, "%s: %s", what, reason);
}

corral_tls *corral_tls_connect(int fd, const char *ca_file, const char *cert_file, const char *key_file,
                               const char *host, char *error, size_t error_length) {
    /* SSL_write writes to the socket without MSG_NOSIGNAL: a peer that went away must be an error, not SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (!context) {
        describe("TLS", "cannot create a context", error, error_length);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(context, ca_file, NULL) != 1) {
        describe(ca_file, "cannot load the CA certificate", error, error_length);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(context, cert_file) != 1) {
        describe(cert_file, "cannot load the client certificate", error, error_length);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_check_private_key(context) != 1) {
        describe(key_file, "cannot load the client key (or it does not match the certificate)", error, error_length);
        SSL_CTX_free(context);
        return NULL;
    }
    SSL *ssl = SSL_new(context);
    if (!ssl) {
        describe("TLS", "cannot create a session", error, error_length);
        SSL_CTX_free(context);
        return NULL;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    unsigned char address[16];
    int isAddress = inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
    int named = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (!isAddress) SSL_set_tlsext_host_name(ssl, host);
    if (named != 1 || SSL_set_fd(ssl, fd) != 1) {
        describe("TLS", "cannot set up the session", error, error_length);
        SSL_free(ssl);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_connect(ssl) != 1) {
        long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            ERR_clear_error();
            if (error && error_length > 0) {
                snprintf(error, error_length, "TLS handshake: the server's certificate: %s",
                         X509_verify_cert_error_string(verify));
            }
        } else {
            describe("TLS handshake", "the server ended it", error, error_length);
        }
        SSL_free(ssl);
        SSL_CTX_free(context);
        return NULL;
    }
    corral_tls *tls = calloc(1, sizeof(*tls));
    if (!tls) {
        SSL_free(ssl);
        SSL_CTX_free(context);
        if (error && error_length > 0) snprintf(error, error_length, "TLS: out of memory");
        return NULL;
    }
    tls->context = context;
    tls->ssl = ssl;
    return tls;
}

long corral_tls_read(corral_tls *tls, void *buffer, size_t length, char *error, size_t error_length) {
    ERR_clear_error();
    int count = SSL_read(tls->ssl, buffer, length > 1 << 30 ? 1 << 30 : (int)length);
    if (count > 0) return count;
    int reason = SSL_get_error(tls->ssl, count);
    if (reason == SSL_ERROR_ZERO_RETURN) return 0;
    /* The peer closed without close_notify: the HTTP layer decides whether the message was complete. */
    if (reason == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return 0;
    if (reason == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return 0;
    }
    describe("TLS read", "the connection failed", error, error_length);
    return -1;
}

int corral_tls_write(corral_tls *tls, const void *buffer, size_t length, char *error, size_t error_length) {
    size_t offset = 0;
    while (offset < length) {
        ERR_clear_error();
        size_t chunk = length - offset > 1 << 30 ? 1 << 30 : length - offset;
        int sent = SSL_write(tls->ssl, (const char *)buffer + offset, (int)chunk);
        if (sent <= 0) {
            describe("TLS write", "the connection failed", error, error_length);
            return -1;
        }
        offset += (size_t)sent;
    }
    return 0;
}

int corral_tls_pending(corral_tls *tls) { return SSL_pending(tls->ssl); }

void corral_tls_free(corral_tls *tls) {
    if (!tls) return;
    SSL_shutdown(tls->ssl);
    SSL_free(tls->ssl);
    SSL_CTX_free(tls->context);
    free(tls);
}

void corral_sha1(const void *bytes, size_t length, unsigned char *digest) {
    SHA1((const unsigned char *)bytes, length, digest);
}
