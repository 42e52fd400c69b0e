/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire envelope shared by the agent link (TCP + CURVE) and the admin socket (ipc).
 *
 * One ZeroMQ frame per message, msgpack: [version, "TYPE", {body}]. Decoding is strict: the
 * frame size is bounded per socket, the version must be ours, the type must be one the
 * receiving socket accepts, and the body must match the type's schema table (unknown fields,
 * wrong types, oversize strings and lists are all refused). A message that fails any check
 * is dropped whole; nothing in it is acted on.
 *
 * The sender's identity is never in the body: on the agent link it is the CURVE key that
 * ZAP authenticated (see coordinator/enroll.c), on the admin socket it is the filesystem
 * permission of the socket.
 */
#pragma once

#include "obj.h"
#include "schema.h"

#define WIRE_VERSION 1

/* Bounds per socket: an agent message carries at most a sealed bootstrap bundle; an admin
 * request at most a manifest file. */
#define WIRE_MAX_AGENT_MESSAGE (4U << 20)
#define WIRE_MAX_ADMIN_MESSAGE (16U << 20)

typedef enum MsgType {
        /* agent -> coordinator */
        MSG_ENROLL,
        MSG_HELLO,
        MSG_ACK,
        MSG_STATUS,
        MSG_REPORT,
        MSG_HEARTBEAT,
        MSG_RESULT,
        MSG_BYE,
        /* coordinator -> agent */
        MSG_ENROLLED,
        MSG_REFUSED,
        MSG_DESIRED,
        MSG_COMMAND,
        MSG_REVOKED,
        /* admin socket */
        MSG_API_REQUEST,
        MSG_API_RESPONSE,
        _MSG_TYPE_MAX,
        _MSG_TYPE_INVALID = -EINVAL,
} MsgType;

/* Which direction/socket a type belongs to; decoders accept only their set. */
typedef enum MsgChannel {
        CHANNEL_AGENT_TO_COORDINATOR,
        CHANNEL_COORDINATOR_TO_AGENT,
        CHANNEL_ADMIN_REQUEST,
        CHANNEL_ADMIN_RESPONSE,
} MsgChannel;

const char *msg_type_to_string(MsgType t);
MsgType msg_type_from_string(const char *s);
const SchemaField *msg_type_schema(MsgType t);

/* Encodes [WIRE_VERSION, type, body]; body may be NULL (empty map). */
int wire_encode(MsgType type, const Obj *body, char **ret, size_t *ret_size);

/*
 * Decodes and validates one frame received on channel. On failure returns -EBADMSG (not
 * msgpack / bad envelope / body fails its schema), -EPROTONOSUPPORT (other version),
 * -EMSGSIZE (too big) or -ENOMEM, and writes a one-line reason to err (naming the type and
 * field) for the caller's log line.
 */
int wire_decode(MsgChannel channel, const void *buf, size_t size, MsgType *ret_type, Obj **ret_body,
                char *err, size_t errsz);

/* Limits used by the message schemas (documented in docs/protocol.md). */
#define WIRE_MAX_NAME       253
#define WIRE_MAX_TEXT       4096
#define WIRE_MAX_OUTPUT     16384
#define WIRE_MAX_BUNDLE     (3U << 20)
#define WIRE_MAX_LABEL_KEY  317          /* DNS subdomain prefix (253) + '/' + name (63) */
#define WIRE_MAX_ANNOTATION (256U << 10) /* Kubernetes' bound on all of an object's annotations */
#define WIRE_MAX_PROBLEM    (64U << 10)  /* one "file:line:col: path: message" line */
#define WIRE_MAX_PROBLEMS   10000U       /* lines in one API_RESPONSE */
