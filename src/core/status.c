/* status.c -- names and messages of codeprof_status, generated from the one
 * table CODEPROF_STATUS_MAP in codeprof.h. */
#include "codeprof/codeprof.h"

#include <stdlib.h>

const char *codeprof_status_name(codeprof_status st) {
    switch (st) {
#define CP_NAME_(name, msg)                                                                        \
    case CODEPROF_##name:                                                                          \
        return "CODEPROF_" #name;
        CODEPROF_STATUS_MAP(CP_NAME_)
#undef CP_NAME_
    default:
        return "CODEPROF_UNKNOWN";
    }
}

const char *codeprof_status_message(codeprof_status st) {
    switch (st) {
#define CP_MSG_(name, msg)                                                                         \
    case CODEPROF_##name:                                                                          \
        return msg;
        CODEPROF_STATUS_MAP(CP_MSG_)
#undef CP_MSG_
    default:
        return "unknown status code";
    }
}

void codeprof_free(void *p) { free(p); }
