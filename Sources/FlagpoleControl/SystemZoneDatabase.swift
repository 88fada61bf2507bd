import FlagpoleCore
import FlagpoleRollout
import Foundation

/// The system's tz database (Debian's `tzdata`: `/usr/share/zoneinfo`, or `$TZDIR`): reads a zone's
/// TZif file and hands its rules, a value, to the pure config loader (``ZoneRules/Resolver``).
package enum SystemZoneDatabase {
    /// The folder read: `$TZDIR` when set, else `/usr/share/zoneinfo`.
    package static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["TZDIR"], !dir.isEmpty { return dir }
        return "/usr/share/zoneinfo"
    }

    /// A resolver over the tz database in `directory` (default: ``directory``).
    package static func resolver(directory: String = SystemZoneDatabase.directory) -> ZoneRules.Resolver {
        { name in rules(forZone: name, directory: directory) }
    }

    /// The rules of a zone, read from `directory/name`.
    package static func rules(forZone name: String, directory: String = SystemZoneDatabase.directory) -> Result<ZoneRules, ZoneRules.LookupFailure> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return .failure(
                .init(
                    message: "the tz database is not installed (no folder \(directory))",
                    hint: "install Debian's tzdata (apt-get install tzdata; scripts/install-deps.sh does), or write a UTC offset like +01:00"))
        }
        guard ZoneRules.isZoneName(name) else {
            return .failure(.init(message: "is not a time zone name", hint: "write an IANA zone such as Europe/Berlin"))
        }
        let path = directory + "/" + name
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return .failure(.init(message: "is not a zone of the tz database (\(directory))", hint: hint(for: name, directory: directory)))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(.init(message: "\(path) cannot be read", hint: "check its permissions"))
        }
        do {
            return .success(try ZoneRules.parseTZif(Array(data), name: name))
        } catch {
            return .failure(.init(message: "\(path) is not a readable zone file: \(error.message)", hint: "reinstall tzdata"))
        }
    }

    /// "did you mean Europe/Berlin?" from the names in the same folder, else an example.
    private static func hint(for name: String, directory: String) -> String {
        let parts = name.split(separator: "/").map(String.init)
        let folder = parts.dropLast().joined(separator: "/")
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? directory : directory + "/" + folder)) ?? []
        let prefix = folder.isEmpty ? "" : folder + "/"
        if let last = parts.last, let s = MessageText.suggestion(for: last, among: listed.filter { $0.first?.isUppercase == true }) {
            return "did you mean \(prefix)\(s)?"
        }
        return "write an IANA zone such as Europe/Berlin or America/New_York (ls \(directory)), or a UTC offset like +01:00"
    }
}
