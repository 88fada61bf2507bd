/// The facts a flag is evaluated against: the OpenFeature targeting key and any attributes.
///
/// Rules read the targeting key as `{"var": "targetingKey"}`; flagd's own values
/// (`$flagd.flagKey`, `$flagd.timestamp`) are added at evaluation time and hide any attribute of
/// the same name.
public struct EvaluationContext: Sendable, Hashable {
    /// The OpenFeature targeting key (the user, session or device being evaluated), if any.
    public var targetingKey: String?
    /// Everything else, as JSON values.
    public var attributes: [String: JSONValue]

    /// A context with no targeting key and no attributes.
    public static let empty = EvaluationContext()

    /// A context from its parts. Both default to empty.
    public init(targetingKey: String? = nil, attributes: [String: JSONValue] = [:]) {
        self.targetingKey = targetingKey
        self.attributes = attributes
    }

    /// A context from a JSON object such as an OFREP request's `context`: a string
    /// `"targetingKey"` member becomes the targeting key, every other member an attribute (a
    /// non-string `"targetingKey"` stays an attribute, so rules see it as it was sent). A value that
    /// is not an object gives the empty context.
    public init(_ json: JSONValue) {
        guard case .object(var members) = json else {
            self.init()
            return
        }
        var key: String?
        if case .string(let k)? = members["targetingKey"] {
            key = k
            members["targetingKey"] = nil
        }
        self.init(targetingKey: key, attributes: members)
    }

    /// The context as one JSON object, with the targeting key under `"targetingKey"`.
    public var jsonValue: JSONValue {
        var o = attributes
        if let targetingKey { o["targetingKey"] = .string(targetingKey) }
        return .object(o)
    }
}
