import Foundation

/// Waits until `condition` holds, checking every `interval`, and fails after `timeout`.
/// For conditions that something else brings about (a message arriving, a server coming back):
/// the test proceeds the moment it holds, and a clear error says what never happened.
package func waitUntil(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(10), interval: Duration = .milliseconds(5),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        if ContinuousClock.now >= deadline { throw TimedOut(description: "timed out after \(timeout) waiting for \(what())") }
        try await Task.sleep(for: interval)
    }
}

/// A condition did not hold in time.
package struct TimedOut: Error, CustomStringConvertible {
    package var description: String
}

extension Process {
    /// Waits until the process has exited, reading `isRunning` (kept by Foundation's SIGCHLD
    /// handling) every 5 ms. Unlike `waitUntilExit()`, which spins a RunLoop on the calling thread,
    /// it stays safe when many tests stop servers at once (a crash in libdispatch's event loop was
    /// seen with `waitUntilExit()` from several threads). Stops waiting after `limit`, when the
    /// server was told SIGTERM/SIGKILL and is a zombie nobody reaps; the caller's next step fails.
    package func waitForExit(limit: Duration = .seconds(30)) {
        let deadline = ContinuousClock.now + limit
        while isRunning, ContinuousClock.now < deadline { usleep(5_000) }
    }
}
