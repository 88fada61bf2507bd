#ifndef FLAGPOLE_CHIREDIS_SHIM_H
#define FLAGPOLE_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <sys/time.h>

/// The hiredis version this module was compiled against, as "MAJOR.MINOR.PATCH".
static inline int flagpole_hiredis_major(void) { return HIREDIS_MAJOR; }
static inline int flagpole_hiredis_minor(void) { return HIREDIS_MINOR; }
static inline int flagpole_hiredis_patch(void) { return HIREDIS_PATCH; }

/// Copies the context's error string (a fixed char array, awkward from Swift).
static inline const char *flagpole_redis_errstr(const redisContext *c) { return c->errstr; }

#endif
