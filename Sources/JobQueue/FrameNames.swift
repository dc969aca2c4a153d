// The names of a job's input frames, which name each frame's result files (`disparity/{name}.png`).
import VideoPlan

/// What a read of a job knows of its input frames' names. A client needs frame i's name to turn a ready
/// range (`frames_ready`) into file URLs before the job has succeeded; most jobs' names follow from their
/// frame selection, so only the others are stored (migration 0009's `jobs.frame_names`).
public enum FrameNames: Equatable, Sendable {
    /// Frame i is named by its index in the source, `start + i × step` zero-padded to 4 digits
    /// (`FrameSelection.frameName`): every video job's frames, and tars whose members are named so. Nothing
    /// is stored for them.
    case sourceIndices
    /// Names of their own (a tar's members may be called anything, `img_17`, `left-000123`), by frame index:
    /// the stems of the result files, as the worker names them.
    case own([String])
    /// Names of their own, not read: a job list reads only whether a job has them, so that a page stays
    /// small whatever its videos' lengths.
    case ownUnread

    /// The NNNN of a frame's result files: its input name without `.png`, the rule of Media's
    /// `FrameRendering.resultName` (which the worker applies, and also checks that the name can name a file;
    /// JobQueue does not link Media, and a test holds the two together).
    public static func resultName(_ inputName: String) -> String {
        inputName.lowercased().hasSuffix(".png") ? String(inputName.dropLast(4)) : inputName
    }

    /// Whether one of the `frames` frames of a job with these names under `selection` is called `name` (the
    /// stem of its result files); nil when a list read left the names out.
    public func include(_ name: String, frames: Int, selection: FrameSelection) -> Bool? {
        switch self {
        case .sourceIndices:
            guard let index = Int(name), index >= selection.start, FrameSelection.frameName(index) == name else { return false }
            let (position, offset) = (index - selection.start).quotientAndRemainder(dividingBy: selection.step)
            return offset == 0 && position < frames
        case let .own(list): return list.contains(name)
        case .ownUnread: return nil
        }
    }

    /// The names to store for a job whose frames give `resultNames` (by index) under `selection`: nil when
    /// they are the source indices, which cost nothing to store.
    public static func toStore(_ resultNames: [String], selection: FrameSelection) -> [String]? {
        let own = resultNames.indices.contains { resultNames[$0] != FrameSelection.frameName(selection.start + $0 * selection.step) }
        return own ? resultNames : nil
    }
}
