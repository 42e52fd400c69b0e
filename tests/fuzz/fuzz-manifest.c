/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML manifests as `anvilctl apply` sends them: yaml_parse_documents() then
 * kind_validate_document() on each document, the coordinator's whole validation path. A
 * parsed document must survive emitting and parsing again unchanged (get -o yaml, then apply).
 */
#include "config.h"
#include "fuzz.h"
#include "kinds.h"
#include "yamlio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        if (size > (1U << 20))
                return 0;
        char *text = fuzz_text(data, size);
        Obj *docs = NULL;
        YamlError ye;
        int r = yaml_parse_documents(text, size, &docs, &ye);
        if (r < 0) {
                FUZZ_CHECK(docs == NULL);
                free(text);
                return 0;
        }
        OBJ_LIST_FOREACH(doc, docs, i) {
                Problems p = {0};
                const KindInfo *k = NULL;
                r = kind_validate_document(doc, &k, &p);
                FUZZ_CHECK(r >= 0);
                char *msg = problems_format("fuzz.yaml", NULL, &p);
                FUZZ_CHECK(msg != NULL);
                free(msg);
                problems_clear(&p);

                char *out = NULL;
                FUZZ_CHECK(yaml_emit(doc, &out) == 0);
                Obj *again = NULL;
                r = yaml_parse_one(out, strlen(out), &again, &ye);
                if (r < 0)
                        fprintf(stderr, "re-parse failed: %d:%d %s\n---\n%s\n---\n", ye.line,
                                ye.column, ye.message, out);
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(obj_equal(doc, again));
                obj_free(again);
                free(out);
        }
        obj_free(docs);
        free(text);
        return 0;
}
