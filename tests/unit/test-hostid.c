/* SPDX-License-Identifier: Apache-2.0 */
/* Product UUIDs and host names: what an agent may enroll as. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hostid.h"

static void test_product_uuid(void **state) {
        (void)state;
        assert_true(product_uuid_valid("4c4c4544-0042-3510-8051-b7c04f4e4d32", true));
        assert_true(product_uuid_valid("00000000-0000-4000-8000-000000000001", true));
        assert_true(product_uuid_valid("4C4C4544-0042-3510-8051-B7C04F4E4D32", false));
        assert_false(product_uuid_valid("4C4C4544-0042-3510-8051-B7C04F4E4D32", true));
        const char *bad[] = {
                NULL,
                "",
                "../../etc/evil uuid",
                "../../etc/Evil UUID",
                "peer-uuid-p",
                "4c4c4544-0042-3510-8051-b7c04f4e4d3",   /* short */
                "4c4c4544-0042-3510-8051-b7c04f4e4d321", /* long */
                "4c4c4544004235108051b7c04f4e4d32",      /* no dashes */
                "4c4c4544-0042-3510-8051-b7c04f4e4d3g",  /* not hex */
                "4c4c4544-0042-3510-8051_b7c04f4e4d32",
                " 4c4c4544-0042-3510-8051-b7c04f4e4d3",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (product_uuid_valid(bad[i], false))
                        fail_msg("accepted %s", bad[i]);
}

static void test_hostname(void **state) {
        (void)state;
        const char *good[] = {"a",
                              "w-1",
                              "rack1-07",
                              "node.example.com",
                              "0abc",
                              "a.b-c.d",
                              "x123456789012345678901234567890123456789012345678901234567890ab"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (!hostname_valid(good[i]))
                        fail_msg("refused %s", good[i]);
        const char *bad[] = {
                NULL,
                "",
                "Bad Name!",
                "bad name",
                "Upper",
                "-lead",
                "trail-",
                "a..b",
                ".a",
                "a.",
                "a.-b",
                "a-.b",
                "under_score",
                "../../etc",
                "x1234567890123456789012345678901234567890123456789012345678901ab", /* 64 */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (hostname_valid(bad[i]))
                        fail_msg("accepted %s", bad[i]);
        char longname[300];
        for (size_t i = 0; i < 254; i++)
                longname[i] = (i % 10 == 9) ? '.' : 'a';
        longname[254] = 0;
        assert_false(hostname_valid(longname)); /* 254 characters */
        longname[253] = 0;
        longname[252] = 'a';
        assert_true(hostname_valid(longname));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_product_uuid),
                cmocka_unit_test(test_hostname),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
