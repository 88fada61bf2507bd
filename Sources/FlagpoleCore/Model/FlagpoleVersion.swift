/// This Flagpole's version, recorded with every sync and by every client.
package enum FlagpoleVersion {
    package static let current = "0.1.0"
}
