#ifndef CORRAL_CTLS_H
#define CORRAL_CTLS_H

#include <stddef.h>

/// A TLS client session over a connected stream socket (OpenSSL), for the daemon API's mutual TLS.
typedef struct corral_tls corral_tls;

/// Runs the TLS handshake over the connected socket `fd` (blocking): the server's certificate must chain to
/// `ca_file` and name `host` (an IP address is matched against the certificate's IP entries, a name against its DNS
/// entries); this side presents `cert_file` with `key_file`. NULL on failure, with the reason in `error`.
/// The socket stays the caller's: `corral_tls_free` does not close it.
corral_tls *corral_tls_connect(int fd, const char *ca_file, const char *cert_file, const char *key_file,
                               const char *host, char *error, size_t error_length);

/// Bytes read (> 0), 0 at the end of the stream (a close_notify or the peer closing), -1 on an error (in `error`).
long corral_tls_read(corral_tls *tls, void *buffer, size_t length, char *error, size_t error_length);

/// Writes all of `length` bytes; 0, or -1 on an error (in `error`).
int corral_tls_write(corral_tls *tls, const void *buffer, size_t length, char *error, size_t error_length);

/// Decrypted bytes already buffered (a read returns at once).
int corral_tls_pending(corral_tls *tls);

/// Sends close_notify when it can and frees the session (not the socket).
void corral_tls_free(corral_tls *tls);

#endif

/// SHA-1 of `length` bytes into `digest` (20 bytes): the WebSocket handshake's accept key.
void corral_sha1(const void *bytes, size_t length, unsigned char *digest);
