/// Where the validator stands in a document, for its diagnostics: a JSON Pointer (``LazyPointer``),
/// or nothing at all (``NoPointer``) in a first pass that only asks whether anything is wrong.
protocol PointerPath: ExpressibleByStringLiteral {
    /// The member `key` of the object here.
    func child(_ key: String) -> Self
    /// The element `index` of the array here.
    func child(_ index: Int) -> Self
    /// The pointer's text (RFC 6901).
    var string: String { get }
}

/// No pointer: checking with it costs nothing for locations, and every diagnostic stands at `""`.
struct NoPointer: PointerPath {
    init() {}
    init(stringLiteral value: String) {}
    func child(_ key: String) -> NoPointer { self }
    func child(_ index: Int) -> NoPointer { self }
    var string: String { "" }
}

/// A JSON Pointer whose text is built only when it is needed — for a diagnostic — rather than for
/// every value the validator looks at: a pointer already spelt out, and up to six more reference
/// tokens held inline, so going a level deeper allocates nothing.
struct LazyPointer: PointerPath, CustomStringConvertible {
    private var base: String
    private var count: UInt8 = 0
    /// Member keys as they are, array indices in decimal (escaping leaves those unchanged).
    private var t0 = "", t1 = "", t2 = "", t3 = "", t4 = "", t5 = ""

    /// A pointer spelt out (RFC 6901: `/flags/my-flag`).
    init(_ pointer: String) {
        base = pointer
    }

    init(stringLiteral value: String) {
        base = value
    }

    /// The member `key` of the object here, as ``JSONPointer/child(_:_:)-(String,String)`` names it.
    func child(_ key: String) -> LazyPointer {
        var pointer = count == 6 ? LazyPointer(string) : self
        switch pointer.count {
        case 0: pointer.t0 = key
        case 1: pointer.t1 = key
        case 2: pointer.t2 = key
        case 3: pointer.t3 = key
        case 4: pointer.t4 = key
        default: pointer.t5 = key
        }
        pointer.count += 1
        return pointer
    }

    /// The element `index` of the array here.
    func child(_ index: Int) -> LazyPointer {
        child(String(index))
    }

    /// The pointer's text.
    var string: String {
        var out = base
        for token in [t0, t1, t2, t3, t4, t5].prefix(Int(count)) {
            out = JSONPointer.child(out, token)
        }
        return out
    }

    var description: String { string }
}
