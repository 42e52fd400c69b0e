/* SPDX-License-Identifier: Apache-2.0 */
#include <strings.h>

#include "explain.h"

static const char *type_label(const SchemaField *f, char *buf, size_t bufsz) {
        const char *named = f->fields ? schema_type_name(f->fields) : NULL;
        switch (f->type) {
        case ST_STRING:
                return "string";
        case ST_INT:
                return "integer";
        case ST_BOOL:
                return "boolean";
        case ST_NUMBER:
                return "number";
        case ST_INT_OR_STRING:
                return "int-or-string";
        case ST_DURATION:
                return "duration";
        case ST_TIME:
                return "time";
        case ST_STRMAP:
                return "map[string]string";
        case ST_ANY:
                return "any";
        case ST_OBJECT:
                return named ? named : "object";
        case ST_LIST:
        case ST_MAP: {
                const char *item = "any";
                switch (f->item) {
                case ST_STRING:
                        item = "string";
                        break;
                case ST_INT:
                        item = "integer";
                        break;
                case ST_BOOL:
                        item = "boolean";
                        break;
                case ST_OBJECT:
                        item = named ? named : "object";
                        break;
                case ST_LIST:
                        item = "[]string";
                        break;
                default:
                        break;
                }
                snprintf(buf, bufsz, f->type == ST_LIST ? "[]%s" : "map[string]%s", item);
                return buf;
        }
        }
        return "?";
}

/* "required, immutable, default 1, one of: a, b, 1-65535" */
static void constraints(const SchemaField *f, char *buf, size_t bufsz) {
        size_t n = 0;
        buf[0] = 0;
#define ADD(...)                                                                                   \
        do {                                                                                       \
                if (n < bufsz) {                                                                   \
                        int w = snprintf(buf + n, bufsz - n, __VA_ARGS__);                         \
                        if (w > 0)                                                                 \
                                n += (size_t)w;                                                    \
                }                                                                                  \
        } while (0)
        if (f->flags & SF_REQUIRED)
                ADD("%srequired", n ? ", " : "");
        if (f->flags & SF_IMMUTABLE)
                ADD("%simmutable", n ? ", " : "");
        if (f->flags & SF_SECRET)
                ADD("%ssecret (redacted)", n ? ", " : "");
        if (f->def)
                ADD("%sdefault %s", n ? ", " : "", f->def);
        if (f->values) {
                ADD("%sone of:", n ? ", " : "");
                for (const char *const *v = f->values; *v; v++)
                        ADD("%s %s", v == f->values ? "" : ",", **v ? *v : "\"\"");
        }
        if (f->type == ST_INT && (f->min || f->max)) {
                if (f->max >= INT32_MAX)
                        ADD("%s>= %lld", n ? ", " : "", (long long)f->min);
                else
                        ADD("%s%lld-%lld", n ? ", " : "", (long long)f->min, (long long)f->max);
        }
#undef ADD
}

static const SchemaField *find_field(const SchemaField *fields, const char *name) {
        for (const SchemaField *f = fields; f && f->name; f++)
                if (strcasecmp(f->name, name) == 0)
                        return f;
        return NULL;
}

static void print_fields_text(FILE *f, const SchemaField *fields, int depth, bool recursive) {
        for (const SchemaField *fl = fields; fl && fl->name; fl++) {
                char tb[96], cb[256];
                constraints(fl, cb, sizeof(cb));
                fprintf(f, "%*s%s\t<%s>%s%s%s\n", 3 + depth * 3, "", fl->name,
                        type_label(fl, tb, sizeof(tb)), *cb ? " (" : "", cb, *cb ? ")" : "");
                if (fl->doc && !recursive)
                        fprintf(f, "%*s%s\n\n", 6 + depth * 3, "", fl->doc);
                if (recursive && fl->fields)
                        print_fields_text(f, fl->fields, depth + 1, true);
        }
}

/* The top-level fields of a document of kind k, as a table of its own. */
static const SchemaField *top_fields(const KindInfo *k, SchemaField buf[static 8]) {
        size_t n = 0;
        buf[n++] = (SchemaField){"apiVersion", ST_STRING, SF_REQUIRED, .doc = "group/version"};
        buf[n++] = (SchemaField){"kind", ST_STRING, SF_REQUIRED, .doc = "the kind"};
        buf[n++] = (SchemaField){"metadata", ST_OBJECT, SF_REQUIRED, .fields = metadata_fields,
                                 .doc = "name, namespace, labels, annotations, ..."};
        if (k->spec)
                buf[n++] = (SchemaField){"spec", ST_OBJECT, k->spec_required ? SF_REQUIRED : 0,
                                         .fields = k->spec, .doc = "the desired state"};
        if (k->status)
                buf[n++] = (SchemaField){"status", ST_OBJECT, 0, .fields = k->status,
                                         .doc = "the observed state; written by controllers only"};
        buf[n] = (SchemaField){.name = NULL};
        return buf;
}

int explain_text(FILE *f, const char *what, bool recursive, char *err, size_t errsz) {
        char kindname[128];
        const char *dot = strchr(what, '.');
        snprintf(kindname, sizeof(kindname), "%.*s", dot ? (int)(dot - what) : (int)strlen(what),
                 what);
        const KindInfo *k = kind_resolve(kindname);
        if (!k) {
                snprintf(err, errsz, "the server doesn't have a resource type \"%s\"", kindname);
                return -ENOENT;
        }
        SchemaField topbuf[8];
        const SchemaField *fields = top_fields(k, topbuf);
        const SchemaField *field = NULL;
        /* The extra top-level fields (Secret's data, ...) are fields of the document too. */
        SchemaField merged[24];
        size_t n = 0;
        for (const SchemaField *fl = fields; fl->name && n < 16; fl++)
                merged[n++] = *fl;
        for (const SchemaField *fl = k->extra; fl && fl->name && n < 23; fl++)
                merged[n++] = *fl;
        merged[n] = (SchemaField){.name = NULL};
        fields = merged;

        char path[512] = "";
        const char *p = dot ? dot + 1 : NULL;
        while (p && *p) {
                char comp[128];
                size_t l = strcspn(p, ".");
                snprintf(comp, sizeof(comp), "%.*s", (int)l, p);
                field = find_field(fields, comp);
                if (!field) {
                        snprintf(err, errsz, "field \"%s\" does not exist in %s%s%s", comp, k->kind,
                                 *path ? "." : "", path);
                        return -ENOENT;
                }
                size_t pl = strlen(path);
                snprintf(path + pl, sizeof(path) - pl, "%s%s", pl ? "." : "", field->name);
                fields = field->fields;
                p += l;
                if (*p == '.')
                        p++;
        }
        char apiv[128], tb[96], cb[256];
        fprintf(f, "GROUP:      %s\nKIND:       %s\nVERSION:    %s\n\n",
                isempty(k->group) ? "core" : k->group, k->kind, k->version);
        (void)apiv;
        if (field) {
                constraints(field, cb, sizeof(cb));
                fprintf(f, "FIELD: %s <%s>%s%s%s\n\nDESCRIPTION:\n    %s\n\n", path,
                        type_label(field, tb, sizeof(tb)), *cb ? " (" : "", cb, *cb ? ")" : "",
                        field->doc ? field->doc : "<empty>");
        } else
                fprintf(f, "DESCRIPTION:\n    %s\n\n", k->doc ? k->doc : "<empty>");
        if (fields) {
                fprintf(f, "FIELDS:\n");
                print_fields_text(f, fields, 0, recursive);
        }
        return 0;
}

/* ---- Markdown ---- */

static void md_escape(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '|')
                        fputs("\\|", f);
                else
                        fputc(*s, f);
        }
}

static void md_anchor(char *buf, size_t bufsz, const char *name) {
        size_t n = 0;
        for (const char *s = name; *s && n + 1 < bufsz; s++)
                buf[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
        buf[n] = 0;
}

static void md_type(FILE *f, const SchemaField *fl) {
        char tb[96], anchor[96];
        const char *t = type_label(fl, tb, sizeof(tb));
        const char *named = fl->fields ? schema_type_name(fl->fields) : NULL;
        if (named) {
                md_anchor(anchor, sizeof(anchor), named);
                /* "[]X" and "map[string]X": the brackets escaped, so only X is a link. */
                const char *pre = strstr(t, named);
                for (const char *c = t; pre && c < pre; c++)
                        fprintf(f, "%s%c", *c == '[' || *c == ']' ? "\\" : "", *c);
                fprintf(f, "[%s](#%s)", named, anchor);
        } else
                fprintf(f, "%s", t);
}

/* One row per field, recursing into unnamed objects; named ones link to their section. */
static void md_rows(FILE *f, const SchemaField *fields, const char *prefix) {
        for (const SchemaField *fl = fields; fl && fl->name; fl++) {
                char path[512], cb[256];
                bool list = fl->type == ST_LIST && fl->item == ST_OBJECT;
                bool map = fl->type == ST_MAP && fl->item == ST_OBJECT;
                snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", fl->name);
                constraints(fl, cb, sizeof(cb));
                fprintf(f, "| `%s` | ", path);
                md_type(f, fl);
                fprintf(f, " | ");
                md_escape(f, cb);
                fprintf(f, " | ");
                md_escape(f, fl->doc);
                fprintf(f, " |\n");
                if (fl->fields && !schema_type_name(fl->fields)) {
                        char sub[520];
                        snprintf(sub, sizeof(sub), "%s%s", path, list ? "[]" : map ? ".*" : "");
                        md_rows(f, fl->fields, sub);
                }
        }
}

static void md_table(FILE *f, const SchemaField *fields, const char *prefix) {
        fprintf(f, "| Field | Type | Constraints | Description |\n|---|---|---|---|\n");
        md_rows(f, fields, prefix);
        fprintf(f, "\n");
}

void explain_markdown(FILE *f) {
        char apiv[128];
        fprintf(f, "## Kinds\n\n| Kind | apiVersion | Names | Scope |\n|---|---|---|---|\n");
        for (const KindInfo *const *kp = anvil_kinds; *kp; kp++) {
                const KindInfo *k = *kp;
                char anchor[96];
                md_anchor(anchor, sizeof(anchor), k->kind);
                fprintf(f, "| [%s](#%s) | `%s` | %s, %s", k->kind, anchor,
                        kind_api_version(k, apiv, sizeof(apiv)), k->plural, k->singular);
                for (const char *const *s = k->short_names; s && *s; s++)
                        fprintf(f, ", %s", *s);
                fprintf(f, " | %s |\n", k->namespaced ? "Namespaced" : "Cluster");
        }
        fprintf(f, "\n");
        for (const KindInfo *const *kp = anvil_kinds; *kp; kp++) {
                const KindInfo *k = *kp;
                fprintf(f, "### %s\n\n`apiVersion: %s`, `kind: %s`. %s\n\n", k->kind,
                        kind_api_version(k, apiv, sizeof(apiv)), k->kind, strempty(k->doc));
                if (k->spec) {
                        fprintf(f, "**spec**%s\n\n", k->spec_required ? " (required)" : "");
                        md_table(f, k->spec, "spec");
                }
                if (k->extra) {
                        fprintf(f, "**Top-level fields**\n\n");
                        md_table(f, k->extra, "");
                }
                if (k->status) {
                        fprintf(f, "**status** (written by controllers; ignored on apply)\n\n");
                        md_table(f, k->status, "status");
                }
        }
        fprintf(f, "## Shared types\n\n");
        for (const SchemaTypeName *t = anvil_schema_types; t->name; t++) {
                fprintf(f, "### %s\n\n%s\n\n", t->name, t->doc);
                md_table(f, t->fields, "");
        }
}
