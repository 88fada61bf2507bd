// What an application needs besides the client itself, so that `import Flagpole` is enough: the
// evaluation context and details, the OpenFeature vocabulary, JSON values, and the Redis
// configuration (with its error). Nothing else of the package's other modules is re-exported: they
// are the package's own (flagctl, the daemon), not products, and may change in any release.
// docs/client.md lists the public API.
@_exported import struct FlagpoleCore.EvaluationContext
@_exported import struct FlagpoleCore.EvaluationDetails
@_exported import enum FlagpoleCore.EvaluationErrorCode
@_exported import enum FlagpoleCore.EvaluationReason
@_exported import enum FlagpoleCore.FlagValueType
@_exported import enum FlagpoleCore.FractionalAlgorithm
@_exported import enum FlagpoleCore.JSONValue
@_exported import struct FlagpoleRedis.RedisConfiguration
@_exported import struct FlagpoleRedis.RedisError
