/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bootstrap bundle as the agent receives it: a sealed box (seal_open) holding YAML
 * (bundle_parse), whose text then gets the host's values substituted. The first input byte
 * picks the path: 0 the rest is bundle text, 1 the rest is the base64 box as it arrives on
 * the wire (sealed to a fixed test key: almost all inputs fail to open, as forgeries must),
 * 2 the rest is sealed to the test key here and then opened, so the parser sees whatever
 * a valid box can carry.
 */
#include <sodium.h>

#include "bundle.h"
#include "fuzz.h"
#include "keys.h"

static void parse(const char *text, size_t size) {
        Obj *b = NULL;
        char err[512] = "";
        int r = bundle_parse(text, size, &b, err, sizeof(err));
        if (r == -EBADMSG || r == -EMSGSIZE)
                FUZZ_CHECK(err[0] != 0);
        if (r < 0)
                return;
        BundleVars vars = {.hostname = "node-1",
                           .uuid = "4c4c4544-0000-1000-8000-000000000001",
                           .machine = obj_get_str(b, "machine")};
        char *sub = bundle_substitute(obj_get_str(b, "kubeadm.config"), &vars);
        FUZZ_CHECK(sub != NULL);
        free(sub);
        OBJ_LIST_FOREACH(f, obj_map_get(b, "files"), i) {
                const char *c = obj_get_str(f, "content");
                if (c) {
                        char *s = bundle_substitute(c, &vars);
                        FUZZ_CHECK(s != NULL);
                        free(s);
                }
        }
        obj_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static KeyPair kp;
        static int have;
        fuzz_setup();
        if (!have) {
                FUZZ_CHECK(sodium_init() >= 0);
                FUZZ_CHECK(enroll_keypair_from_token("fuzz.fuzzfuzzfuzzfuzz", &kp) == 0);
                have = 1;
        }
        if (size < 1 || size > (4U << 20))
                return 0;
        char *text = fuzz_text(data + 1, size - 1);
        void *plain = NULL;
        size_t n = 0;
        switch (data[0] % 3) {
        case 0:
                parse(text, size - 1);
                break;
        case 1:
                if (seal_open(&kp, text, &plain, &n) == 0)
                        parse(plain, n);
                break;
        case 2: {
                char *box = NULL;
                FUZZ_CHECK(seal_to_key(kp.public_z85, text, size - 1, &box) == 0);
                FUZZ_CHECK(seal_open(&kp, box, &plain, &n) == 0);
                FUZZ_CHECK(n == size - 1);
                parse(plain, n);
                free(box);
                break;
        }
        }
        free(plain);
        free(text);
        return 0;
}
