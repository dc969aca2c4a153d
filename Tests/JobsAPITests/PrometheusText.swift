// Reading and checking the Prometheus text that /metrics serves, for the tests of its figures.
import Foundation
import TestSupport
import XCTest

/// The value of the sample `series` (its name with any labels, as written) in a text exposition; nil when absent.
func metricValue(_ series: String, in text: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
}

/// Asserts that Prometheus's own checker accepts `text` with no lint finding. promtool reads the exposition
/// from stdin; it comes with Debian's prometheus package (`.ci/setup --tests`).
func assertPromtoolAccepts(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("dynstereo-metrics-\(UUID().uuidString).txt")
    defer { try? FileManager.default.removeItem(at: path) }
    try Data(text.utf8).write(to: path)
    let check = try TestDatabase.run("/bin/sh", ["-c", "promtool check metrics < '\(path.path)'"])
    XCTAssertEqual(check.status, 0, "promtool check metrics: \(check.output)\n\(text)", file: file, line: line)
    XCTAssertEqual(check.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "no lint findings", file: file, line: line)
}
