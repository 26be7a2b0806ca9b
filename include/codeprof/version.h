/* version.h -- libcodeprof version macros. */
#ifndef CODEPROF_VERSION_H
#define CODEPROF_VERSION_H

#define CODEPROF_VERSION_MAJOR 0
#define CODEPROF_VERSION_MINOR 1
#define CODEPROF_VERSION_PATCH 0
#define CODEPROF_VERSION_STRING "0.1.0"
/* Version of the JSON report schema (docs/report-schema.md). */
#define CODEPROF_REPORT_SCHEMA_VERSION 4

#endif /* CODEPROF_VERSION_H */
