/// This Flagpole's version, recorded with every sync and by every client.
public enum FlagpoleVersion {
    public static let current = "0.1.0"
}
