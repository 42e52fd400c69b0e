/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A main() for the fuzz targets in builds without libFuzzer: runs the target on every file
 * named on the command line, or on every file in the directories named. ctest uses it to
 * replay each target's corpus (seeds and every crash found so far) under ASan and UBSan.
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "fuzz.h"

static int run_file(const char *path) {
        char *buf = NULL;
        size_t size = 0;
        int r = read_file_bounded(path, 64U << 20, &buf, &size);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return 1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, size);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        int failed = 0, n = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        failed++;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed += run_file(argv[i]);
                        n++;
                        continue;
                }
                struct dirent **list;
                int k = scandir(argv[i], &list, NULL, alphasort);
                if (k < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        failed++;
                        continue;
                }
                for (int j = 0; j < k; j++) {
                        if (list[j]->d_name[0] != '.') {
                                char path[4096];
                                snprintf(path, sizeof(path), "%s/%s", argv[i], list[j]->d_name);
                                failed += run_file(path);
                                n++;
                        }
                        free(list[j]);
                }
                free(list);
        }
        printf("replayed %d inputs, %d unreadable\n", n, failed);
        return failed || n == 0 ? 1 : 0;
}
