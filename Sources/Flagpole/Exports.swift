// What an application needs besides the client itself: evaluation contexts and details, JSON
// values, and the Redis configuration, so that `import Flagpole` is enough.
@_exported import FlagpoleCore

@_exported import struct FlagpoleRedis.RedisConfiguration
