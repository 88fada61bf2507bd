import Glibc

/// The command line of `ofrep-load`.
struct Options {
    /// `http://host[:port][/path]`; required.
    var url = ""
    /// The request method. Default: `POST` when there is a body, else `GET`.
    var method: String?
    /// The request body. Default: none.
    var body: [UInt8] = []
    /// Extra request headers, in order. `Host` defaults to the URL's; `Content-Length` is set here.
    var headers: [(name: String, value: String)] = []
    /// Keep-alive connections, each with at most one request in flight. Default: 50.
    var connections = 50
    /// Requests per second over all connections; 0 is closed loop. Default: 20,000.
    var rate = 20_000.0
    /// The measured interval. Default: 10 s.
    var duration = Duration.seconds(10)
    /// Load before the measured interval, at the same rate, not recorded. Default: 2 s.
    var warmUp = Duration.seconds(2)
    /// Threads, each with its share of the connections. Default: 1.
    var threads = 1
    /// How early a due request may go out (see ``Schedule/sendAhead``). Default: 30 µs.
    var sendAhead = Duration.microseconds(30)

    static let usage = """
        usage: ofrep-load --url http://HOST:PORT/PATH [options]

        Sends HTTP/1.1 requests over keep-alive connections at a constant rate (open loop, like
        wrk2): connection i sends at t0 + offset_i + k * connections / rate. A request whose
        connection is still waiting for the previous answer goes out as soon as that answer
        arrives, and its latency counts from when it was due (coordinated omission corrected).

          --url URL            the target; plain http only
          --method METHOD      default POST with --body, else GET
          --body TEXT          the request body
          --header 'N: V'      a request header; repeatable
          --connections N      keep-alive connections (default 50)
          --rate R             requests per second in total (default 20000);
                               0 = closed loop: each connection sends again as soon as it has
                               the answer, like wrk
          --duration D         measured time (default 10s); units ms, s, m, h
          --warmup D           unrecorded load before it (default 2s)
          --threads N          generator threads (default 1)
          --send-ahead D       how early a due request may go out (default 30us, about
                               how late a timed wait ends here); one wake-up sends every
                               request due within it; a request sent early is timed from
                               when it went out

        Prints the requests answered in the measured time and the rate achieved, non-2xx
        answers and socket errors, latency percentiles from when each request was due and
        service-time percentiles from its write, and the CPU the generator used.
        Exits 1 when the URL cannot be reached or the achieved rate is below 95% of --rate,
        2 on a bad command line.
        """

    /// Parses `arguments` (without the program name). `--name value` and `--name=value` both work.
    static func parse(_ arguments: [String]) throws(LoadError) -> Options {
        var options = Options()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value() throws(LoadError) -> String {
                if let inlineValue { return inlineValue }
                guard let next = rest.popFirst() else { throw .usage("\(name) needs a value") }
                return next
            }
            switch name {
            case "-h", "--help":
                print(usage)
                exit(0)
            case "--url": options.url = try value()
            case "--method": options.method = try value()
            case "--body": options.body = Array(try value().utf8)
            case "--header": options.headers.append(try header(try value()))
            case "--connections": options.connections = try integer(name, try value(), minimum: 1)
            case "--threads": options.threads = try integer(name, try value(), minimum: 1)
            case "--rate":
                let text = try value()
                guard let rate = Double(text), rate >= 0, rate.isFinite else {
                    throw .usage("--rate wants a number of requests per second (0 for closed loop), not '\(text)'")
                }
                options.rate = rate
            case "--duration": options.duration = try duration(name, try value(), allowZero: false)
            case "--warmup", "--warm-up": options.warmUp = try duration(name, try value(), allowZero: true)
            case "--send-ahead": options.sendAhead = try duration(name, try value(), allowZero: true)
            default:
                throw .usage("unknown argument '\(argument)'")
            }
        }
        guard !options.url.isEmpty else { throw .usage("--url is required") }
        guard options.rate <= Double(options.connections) * 1e6 else {
            throw .usage("--rate \(options.rate) is more than a request per microsecond per connection")
        }
        guard options.threads <= options.connections else {
            throw .usage("--threads \(options.threads) is more than --connections \(options.connections)")
        }
        return options
    }

    private static func integer(_ name: String, _ text: String, minimum: Int) throws(LoadError) -> Int {
        guard let number = Int(text), number >= minimum else {
            throw .usage("\(name) wants a whole number of at least \(minimum), not '\(text)'")
        }
        return number
    }

    /// `10s`, `500ms`, `1.5s`, `2m`, `1h` (as wrk takes them), or a plain number of seconds.
    static func duration(_ name: String, _ text: String, allowZero: Bool) throws(LoadError) -> Duration {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("us", 0.000_001), ("µs", 0.000_001), ("s", 1), ("m", 60), ("h", 3600)]
        let unit = units.first { text.hasSuffix($0.suffix) } ?? ("", 1)
        guard let number = Double(text.dropLast(unit.suffix.count)), number.isFinite,
            allowZero ? number >= 0 : number > 0
        else {
            throw .usage("\(name) wants a duration such as 10s, 500ms, 200us or 2m, not '\(text)'")
        }
        return .nanoseconds(Int64((number * unit.seconds * 1e9).rounded()))
    }

    /// `Name: value`, the value trimmed; no line breaks, which would split the request.
    static func header(_ text: String) throws(LoadError) -> (name: String, value: String) {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex,
            !text.contains(where: { $0 == "\r" || $0 == "\n" })
        else {
            throw .usage("--header wants 'Name: value', not '\(text)'")
        }
        let name = String(text[..<colon])
        let value = String(text[text.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
        guard !name.contains(" ") else { throw .usage("--header wants 'Name: value', not '\(text)'") }
        if name.lowercased() == "content-length" || name.lowercased() == "transfer-encoding" {
            throw .usage("--header \(name): ofrep-load sets Content-Length from --body itself")
        }
        return (name, value)
    }
}
