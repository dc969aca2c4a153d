// Which frames of a source video a run keeps: skip, then stride, then cap (0-based, in that order).

/// A frame selection, applied in this order: skip `start` frames, keep every `step`-th from there, keep at
/// most `count` of those (nil: all). The CLI spells them `--start-frame`, `--frame-step`, `--frame-count`;
/// HTTP `start_frame`, `frame_step`, `frame_count`.
public struct FrameSelection: Codable, Equatable, Sendable {
    public var start: Int
    public var step: Int
    public var count: Int?

    /// Everything: the default.
    public static let all = FrameSelection()

    public init(start: Int = 0, step: Int = 1, count: Int? = nil) {
        self.start = start
        self.step = step
        self.count = count
    }

    /// The first broken rule, worded for `surface`, or nil.
    public func problem(for surface: ParameterSurface) -> String? {
        func name(_ snake: String) -> String {
            surface == .http ? snake : "--" + snake.split(separator: "_").joined(separator: "-")
        }
        if start < 0 { return "\(name("start_frame")) must be 0 or more, got \(start)" }
        if step < 1 { return "\(name("frame_step")) must be 1 or more, got \(step)" }
        if let count, count < 1 { return "\(name("frame_count")) must be 1 or more, got \(count)" }
        return nil
    }

    /// Whether source frame `index` is kept, given that `keptBefore` frames before it were.
    public func keeps(_ index: Int, keptBefore: Int) -> Bool {
        guard index >= start, (index - start) % step == 0 else { return false }
        return count.map { keptBefore < $0 } ?? true
    }

    /// The source indices kept out of `total` frames, in order.
    public func indices(of total: Int) -> [Int] {
        guard start < total else { return [] }
        let strided = Array(Swift.stride(from: start, to: total, by: step))
        return count.map { Array(strided.prefix($0)) } ?? strided
    }

    /// How many source frames a decoder must read to reach the last kept one (0 when none is kept).
    public func framesToRead(of total: Int) -> Int {
        indices(of: total).last.map { $0 + 1 } ?? 0
    }

    /// A source frame's name: its index, zero-padded to 4 digits (wider past 9999).
    public static func frameName(_ index: Int) -> String {
        let digits = String(index)
        return digits.count >= 4 ? digits : String(repeating: "0", count: 4 - digits.count) + digits
    }
}
