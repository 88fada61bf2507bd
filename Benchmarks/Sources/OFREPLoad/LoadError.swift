import Glibc

/// A failure that ends the run with a message for the person who started it.
struct LoadError: Error, CustomStringConvertible {
    var description: String
    /// The exit status: 2 for a bad command line, 1 for everything else.
    var exitStatus: Int32

    init(_ description: String, exitStatus: Int32 = 1) {
        self.description = description
        self.exitStatus = exitStatus
    }

    static func usage(_ description: String) -> LoadError {
        LoadError("\(description) (see ofrep-load --help)", exitStatus: 2)
    }
}

/// Prints `ofrep-load: message` on stderr and exits with `status`. Worker threads call it for what
/// makes the whole measurement meaningless (a response that is not HTTP/1.1), so that no half-run
/// is reported.
func fail(_ message: String, status: Int32 = 1) -> Never {
    printError(message)
    exit(status)
}

func printError(_ message: String) {
    writeLine("ofrep-load: \(message)", to: STDERR_FILENO)
}

/// Writes `line` and a newline unbuffered, so that the report on stdout and a message on stderr
/// come out in the order they were written.
func writeLine(_ line: String, to fd: Int32 = STDOUT_FILENO) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
