// An HTTP/1.1 keep-alive load generator with constant-rate, open-loop scheduling (wrk2's
// semantics, coordinated omission corrected), for the latency of `flagctl daemon`'s OFREP
// endpoint at a fixed request rate. wrk only saturates (closed loop), where latency is just
// connections / throughput; this answers "p99 at 20,000 req/s over 50 connections".
//
//   cd Benchmarks && swift run -c release ofrep-load --url http://127.0.0.1:8080/ofrep/v1/evaluate/flags/KEY \
//       --body '{"context":{"targetingKey":"user-42"}}' --header 'Content-Type: application/json' \
//       [--connections 50] [--rate 20000] [--duration 10s] [--warmup 2s] [--threads 1]
//
// --rate 0 is closed loop, like wrk. Benchmarks/ofrep-benchmark/run.sh runs both against a daemon.
// Dependency-free: non-blocking sockets and epoll, one event loop per thread (see Worker.swift).
import Glibc

do throws(LoadError) {
    let options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
    let target = try Target(options)
    let (address, sockets) = try connectAll(options, target)
    reduceTimerSlack()
    let schedule = Schedule(options: options, start: monotonicNanoseconds() + 5_000_000)
    let workers = try makeWorkers(options, target, address, sockets, schedule)

    let cpuBefore = processCPUNanoseconds()
    let wallBefore = monotonicNanoseconds()
    runOnThreads(workers)
    let cpu = processCPUNanoseconds() - cpuBefore
    let wall = monotonicNanoseconds() - wallBefore

    var tally = Tally()
    for worker in workers { tally.merge(worker.tally) }
    tally.latencies.sort()
    tally.serviceTimes.sort()
    let report = Report(options: options, tally: tally, cpuNanoseconds: cpu, wallNanoseconds: wall)
    for line in report.lines { writeLine(line) }
    if tally.latencies.isEmpty {
        throw LoadError("no responses in the measured time")
    }
    if report.fellBehind {
        throw LoadError(
            "achieved \(fixed(report.achievedRate, 0)) req/s, below 95% of the target \(fixed(options.rate, 0)) req/s:"
                + " the generator or the server could not keep up"
                + (tally.socketErrors > 0 ? " (\(tally.socketErrors) socket errors)" : ""))
    }
} catch {
    printError(error.description)
    exit(error.exitStatus)
}

/// Opens every connection before the clock starts, on the first of the URL's addresses that
/// accepts one, so that an unreachable URL is reported once with its address.
func connectAll(_ options: Options, _ target: Target) throws(LoadError) -> (SocketAddress, [Int32]) {
    var failures: [String] = []
    for address in try SocketAddress.resolve(host: target.host, port: target.port) {
        let first: Int32
        do {
            first = try connectNow(to: address, timeoutMilliseconds: 5_000)
        } catch {
            failures.append(error.description)
            continue
        }
        var sockets = [first]
        for _ in 1..<options.connections {
            sockets.append(try connectNow(to: address, timeoutMilliseconds: 5_000))
        }
        return (address, sockets)
    }
    throw LoadError(failures.isEmpty ? "\(target.host) has no address" : failures.joined(separator: "; "))
}

/// Deals the connections out round-robin: worker j gets connections j, j + threads, …
func makeWorkers(
    _ options: Options, _ target: Target, _ address: SocketAddress, _ sockets: [Int32], _ schedule: Schedule
) throws(LoadError) -> [Worker] {
    let expected = options.rate > 0
        ? Int(options.rate * options.duration.seconds * 1.05) / options.threads + 1_024
        : 1 << 20
    var workers: [Worker] = []
    for thread in 0..<options.threads {
        let indices = Array(stride(from: thread, to: options.connections, by: options.threads))
        workers.append(
            try Worker(
                request: target.request, address: address, schedule: schedule, sockets: indices.map { sockets[$0] },
                indices: indices, totalConnections: options.connections, expectedRequests: expected))
    }
    return workers
}

/// Runs each worker on a thread of its own and returns when all are done. A worker is touched by
/// its thread alone until `pthread_join` returns.
func runOnThreads(_ workers: [Worker]) {
    var threads: [pthread_t] = []
    for worker in workers {
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<Worker>.fromOpaque(argument!).takeUnretainedValue().run()
                return nil
            }, Unmanaged.passUnretained(worker).toOpaque())
        guard status == 0 else { fail("pthread_create: \(errorText(status))") }
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}
