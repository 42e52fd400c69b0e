/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading YAML configuration files against a schema table, with every problem reported as
 * FILE:LINE:COLUMN: field: message (the same form manifests use).
 */
#pragma once

#include "obj.h"
#include "schema.h"

/* Parses and validates path. A missing file is -ENOENT (callers decide whether that is
 * fine). On -EBADMSG, *ret_errors holds the formatted problems (one per line). */
int config_load(const char *path, const SchemaField *schema, Obj **ret, char **ret_errors);
/* The same on text already read (path names it in messages); also the fuzz target's entry. */
int config_parse(const char *path, const char *text, size_t size, const SchemaField *schema,
                 Obj **ret, char **ret_errors);
#define CONFIG_MAX_SIZE (1U << 20)

/* Formats problems as "FILE:LINE:COLUMN: [prefix: ]path: message\n" lines. */
char *problems_format(const char *file, const char *prefix, const Problems *p);

/* Value helpers with defaults. */
const char *config_str(const Obj *c, const char *key, const char *def);
uint64_t config_duration(const Obj *c, const char *key, uint64_t def_usec);

/* Endpoint checks shared by both daemons' configurations, their flags and anvilctl. */
typedef enum EndpointUse {
        ENDPOINT_BIND,      /* listen: any host ZeroMQ binds to, a wildcard included */
        ENDPOINT_CONNECT,   /* the agent's coordinator: no wildcard */
        ENDPOINT_ADVERTISE, /* what agents are told: no wildcard */
} EndpointUse;
/* NULL when s is a tcp://HOST:PORT fit for use, else the message (in buf). */
const char *endpoint_check(const char *s, EndpointUse use, char *buf, size_t bufsz);
/* A wildcard or loopback tcp://HOST:PORT: no other host can reach it. */
bool endpoint_is_local(const char *s);
bool endpoint_is_wildcard(const char *s);
/* NULL when s is IPv4ADDR:PORT (the metrics endpoint), else the message (in buf). */
const char *addr_port_check(const char *s, char *buf, size_t bufsz);
/* The same as SchemaCheck functions for configuration tables. */
const char *check_listen_endpoint(const Obj *v, char *buf, size_t bufsz);
const char *check_connect_endpoint(const Obj *v, char *buf, size_t bufsz);
const char *check_advertise_endpoint(const Obj *v, char *buf, size_t bufsz);
const char *check_addr_port_or_empty(const Obj *v, char *buf, size_t bufsz);
/* Several problems ("...\n...\n") as one line ("...; ..."), for a log message. */
char *config_errors_one_line(const char *errors);
