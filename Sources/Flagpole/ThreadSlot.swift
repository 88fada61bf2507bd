import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What one thread remembers between evaluations: its counter stripe, and the snapshot (and hooks)
/// of the client it last evaluated with.
///
/// Every evaluation reads the client's current snapshot. Taking a lock and retaining a shared
/// object on every call would make threads on different cores fight over the same cache lines, so
/// each thread keeps its own strong reference to the snapshot it last used, tagged with the
/// client's generation number; an evaluation only compares that number with the client's (one
/// atomic load of a line nobody writes between updates) and uses the thread's own reference.
/// After an update the first evaluation on each thread takes the client's lock once to pick up
/// the new snapshot. A thread keeps at most one snapshot alive, until it evaluates again or exits.
///
/// Only its own thread touches a slot (through a POSIX thread-specific key), so it needs no lock.
final class ThreadSlot {
    /// The stripe of striped counters this thread uses: its own for the first
    /// ``StripedCounters/exclusiveStripes`` threads of the process, then one of as many shared ones.
    let stripe: Int
    /// Whether no other thread has this stripe, so that this thread may add to its counters
    /// without a locked instruction.
    let ownsStripe: Bool
    /// The ``FlagpoleClient/id`` of the client `snapshot` belongs to (0: none).
    var owner: UInt64 = 0
    /// The client's generation when `snapshot` was taken.
    var generation: UInt64 = 0
    /// The thread's strong reference.
    var snapshot: FlagSnapshot?
    /// The same reference, for use without retain and release.
    var unmanaged: Unmanaged<FlagSnapshot>?
    /// The client's hooks when `snapshot` was taken (published with it); nil when it has none.
    var hooks: HookList?
    /// Whether `hooks` is set: the one test an evaluation without hooks pays.
    var hasHooks = false

    private init(stripe: Int) {
        let n = StripedCounters.exclusiveStripes
        ownsStripe = stripe < n
        self.stripe = ownsStripe ? stripe : n + stripe & (n - 1)
    }

    /// Stripes are handed out round robin, so the first threads each get their own.
    private static let nextStripe = Atomic<Int>(0)

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        #if canImport(Darwin)
        let status = pthread_key_create(&key) { Unmanaged<ThreadSlot>.fromOpaque($0).release() }
        #else
        let status = pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<ThreadSlot>.fromOpaque(pointer).release() }
        }
        #endif
        precondition(status == 0, "pthread_key_create failed (\(status))")
        return key
    }()

    /// Runs `body` with the calling thread's slot.
    @inline(__always)
    static func withCurrent<R>(_ body: (ThreadSlot) -> R) -> R {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<ThreadSlot>.fromOpaque(pointer)._withUnsafeGuaranteedRef(body)
        }
        return withNewSlot(body)
    }

    @inline(never)
    private static func withNewSlot<R>(_ body: (ThreadSlot) -> R) -> R {
        let slot = ThreadSlot(stripe: nextStripe.wrappingAdd(1, ordering: .relaxed).oldValue)
        pthread_setspecific(key, Unmanaged.passRetained(slot).toOpaque())
        return body(slot)
    }
}
