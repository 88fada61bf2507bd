/// A place in a named file: the path as the caller gave it, and a 1-based line and column
/// (columns count Unicode scalars, as ``SourceLocation`` does).
package struct FileLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The file's path, exactly as it was handed to the loader.
    package var file: String
    /// The 1-based line.
    package var line: Int
    /// The 1-based column, in Unicode scalars.
    package var column: Int

    /// Creates a location from its parts.
    package init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// Creates a location from a file path and a place in that file.
    package init(file: String, _ location: SourceLocation) {
        self.init(file: file, line: location.line, column: location.column)
    }

    /// `file:line:column`, the form editors and terminals recognise.
    package var description: String { "\(file):\(line):\(column)" }

    /// Orders by file path, then line, then column.
    package static func < (lhs: FileLocation, rhs: FileLocation) -> Bool {
        if lhs.file != rhs.file { return lhs.file < rhs.file }
        if lhs.line != rhs.line { return lhs.line < rhs.line }
        return lhs.column < rhs.column
    }
}
