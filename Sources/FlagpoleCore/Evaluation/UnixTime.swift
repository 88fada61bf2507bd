#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The wall clock `$flagd.timestamp` reads by default.
enum UnixTime {
    /// Seconds since 1970-01-01 UTC.
    @Sendable
    static func now() -> Int64 {
        Int64(time(nil))
    }
}
