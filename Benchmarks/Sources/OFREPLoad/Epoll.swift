import Glibc

/// epoll (and timerfd) for one worker thread, with a wait that has nanosecond resolution.
///
/// Swift's Glibc module does not include `<sys/epoll.h>` or `<sys/timerfd.h>`, and this package
/// stays free of C targets, so the few libc functions are looked up with `dlsym` when a poller is
/// made and called through typed C function pointers. `epoll_event` is declared by hand: glibc
/// packs it on x86_64 (12 bytes, `data` at offset 4), elsewhere it has its natural 16-byte layout.
///
/// Waiting: `epoll_pwait2` takes a `timespec` timeout (Linux 5.11, glibc 2.35). Where it is
/// missing, a timerfd armed at the deadline sits in the same epoll set and `epoll_wait` blocks
/// without a timeout. Both sleep on an hrtimer, so the wait is as precise as the thread's timer
/// slack allows (see `reduceTimerSlack()`), and the thread uses no CPU while it waits.
final class Poller {
    static let readable: UInt32 = 0x001  // EPOLLIN
    static let writable: UInt32 = 0x004  // EPOLLOUT
    static let error: UInt32 = 0x008  // EPOLLERR
    static let hangUp: UInt32 = 0x010  // EPOLLHUP

    /// The token of the timerfd in the fallback; connection tokens are their indices.
    private static let timerToken = UInt64.max

    #if arch(x86_64)
    private static let eventSize = 12
    private static let dataOffset = 4
    #else
    private static let eventSize = 16
    private static let dataOffset = 8
    #endif
    private static let capacity = 256

    private typealias CreateFunction = @convention(c) (Int32) -> Int32
    private typealias ControlFunction = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    private typealias WaitFunction = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32
    private typealias PreciseWaitFunction =
        @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, UnsafePointer<timespec>?, UnsafeRawPointer?) -> Int32
    private typealias TimerCreateFunction = @convention(c) (Int32, Int32) -> Int32
    private typealias TimerSetFunction =
        @convention(c) (Int32, Int32, UnsafePointer<itimerspec>?, UnsafeMutablePointer<itimerspec>?) -> Int32

    private let descriptor: Int32
    private let control: ControlFunction
    private let wait: WaitFunction
    private var preciseWait: PreciseWaitFunction?
    private let timerCreate: TimerCreateFunction
    private let timerSet: TimerSetFunction
    /// The timerfd of the fallback, made when `epoll_pwait2` first turns out to be missing.
    private var timer: Int32 = -1
    private let events: UnsafeMutableRawPointer

    init() throws(LoadError) {
        func function<F>(_ name: String, as type: F.Type) throws(LoadError) -> F {
            guard let pointer = dlsym(nil, name) else { throw LoadError("libc has no \(name)") }
            return unsafeBitCast(pointer, to: type)
        }
        let create = try function("epoll_create1", as: CreateFunction.self)
        control = try function("epoll_ctl", as: ControlFunction.self)
        wait = try function("epoll_wait", as: WaitFunction.self)
        preciseWait = try? function("epoll_pwait2", as: PreciseWaitFunction.self)
        timerCreate = try function("timerfd_create", as: TimerCreateFunction.self)
        timerSet = try function("timerfd_settime", as: TimerSetFunction.self)
        descriptor = create(O_CLOEXEC)
        guard descriptor >= 0 else { throw LoadError("epoll_create1: \(errorText(errno))") }
        events = .allocate(byteCount: Self.capacity * Self.eventSize, alignment: 8)
    }

    deinit {
        events.deallocate()
        if timer >= 0 { close(timer) }
        close(descriptor)
    }

    /// Watches `fd` for `interest` (`readable`, `writable`), reported with `token`.
    func add(_ fd: Int32, token: Int, interest: UInt32) {
        update(1, fd, token: UInt64(token), interest: interest)  // EPOLL_CTL_ADD
    }

    /// Changes what `fd` is watched for.
    func modify(_ fd: Int32, token: Int, interest: UInt32) {
        update(3, fd, token: UInt64(token), interest: interest)  // EPOLL_CTL_MOD
    }

    private func update(_ operation: Int32, _ fd: Int32, token: UInt64, interest: UInt32) {
        var event = [UInt8](repeating: 0, count: Self.eventSize)
        event.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: interest, toByteOffset: 0, as: UInt32.self)
            bytes.storeBytes(of: token, toByteOffset: Self.dataOffset, as: UInt64.self)
            if control(descriptor, operation, fd, bytes.baseAddress) != 0 {
                fail("epoll_ctl on descriptor \(fd): \(errorText(errno))")
            }
        }
    }

    /// Waits until an event arrives or the monotonic clock reaches `deadline` (nanoseconds, see
    /// `monotonicNanoseconds()`), then calls `body` with each connection token and its events.
    func wait(until deadline: Int64, _ body: (_ token: Int, _ events: UInt32) -> Void) {
        let count = waitForEvents(until: deadline)
        for i in 0..<count {
            let event = events + i * Self.eventSize
            let flags = event.loadUnaligned(as: UInt32.self)
            let token = event.loadUnaligned(fromByteOffset: Self.dataOffset, as: UInt64.self)
            if token == Self.timerToken {
                var expirations: UInt64 = 0
                _ = read(timer, &expirations, 8)
            } else {
                body(Int(token), flags)
            }
        }
    }

    private func waitForEvents(until deadline: Int64) -> Int {
        let remaining = max(0, deadline - monotonicNanoseconds())
        if let preciseWait {
            var timeout = timespec(tv_sec: Int(remaining / 1_000_000_000), tv_nsec: Int(remaining % 1_000_000_000))
            let count = preciseWait(descriptor, events, Int32(Self.capacity), &timeout, nil)
            if count >= 0 { return Int(count) }
            if errno == EINTR { return 0 }
            guard errno == ENOSYS else { fail("epoll_pwait2: \(errorText(errno))") }
            self.preciseWait = nil
        }
        if timer < 0 { makeTimer() }
        if remaining > 0 {
            var when = itimerspec()
            when.it_value = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            _ = timerSet(timer, 1, &when, nil)  // TFD_TIMER_ABSTIME
        }
        let count = wait(descriptor, events, Int32(Self.capacity), remaining > 0 ? -1 : 0)
        if count >= 0 { return Int(count) }
        guard errno == EINTR else { fail("epoll_wait: \(errorText(errno))") }
        return 0
    }

    private func makeTimer() {
        timer = timerCreate(CLOCK_MONOTONIC, O_NONBLOCK | O_CLOEXEC)  // TFD_NONBLOCK | TFD_CLOEXEC
        guard timer >= 0 else { fail("timerfd_create: \(errorText(errno))") }
        update(1, timer, token: Self.timerToken, interest: Self.readable)
    }
}

/// Lets this thread's timed waits end within about a microsecond of their deadline instead of the
/// default 50 µs timer slack, which matters when requests are due every 50 µs. Threads started
/// afterwards inherit it. Best effort: where `/proc` refuses, the default slack stays.
func reduceTimerSlack() {
    let fd = open("/proc/self/timerslack_ns", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = write(fd, "1", 1)
    close(fd)
}

/// CLOCK_MONOTONIC in nanoseconds: every time in the generator is one of these.
@inline(__always)
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// User plus system CPU time of the whole process so far, in nanoseconds.
func processCPUNanoseconds() -> Int64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func nanoseconds(_ t: timeval) -> Int64 { Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_usec) * 1_000 }
    return nanoseconds(usage.ru_utime) + nanoseconds(usage.ru_stime)
}

func errorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
