// Where the tests find ../shared (golden data, checkpoint cases), read in place.
import Foundation

/// Paths into the shared data folder beside the project root.
public enum SharedData {
    /// The project root: two folders above this file (Tests/TestSupport/).
    public static let projectRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared`, or `DYNSTEREO_SHARED` when set.
    public static let root: URL = {
        if let override = ProcessInfo.processInfo.environment["DYNSTEREO_SHARED"] {
            return URL(fileURLWithPath: override)
        }
        return projectRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    public static var golden: URL { root.appendingPathComponent("golden") }
    public static var pth: URL { golden.appendingPathComponent("pth") }
    public static func goldenSet(_ name: String) -> URL { golden.appendingPathComponent(name) }
}
