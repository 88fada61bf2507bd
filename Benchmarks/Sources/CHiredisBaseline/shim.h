#ifndef FLAGPOLE_BENCH_CHIREDIS_BASELINE_H
#define FLAGPOLE_BENCH_CHIREDIS_BASELINE_H
// hiredis called straight from the redis-comparison benchmark, without FlagpoleRedis: the
// baseline that shows what the Swift wrapper itself adds.
#include <hiredis/hiredis.h>
#include <sys/time.h>
#endif
