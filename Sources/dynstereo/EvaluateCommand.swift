// `dynstereo evaluate`: the reference's accuracy and temporal-consistency metrics against the user's ground truth.
import ArgumentParser
import Evaluation
import Foundation

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Scores a predicted disparity video against ground truth with the reference's EPE and temporal EPE.",
        discussion: "Prints one JSON object of the reference's metric names on stdout (disp_epe_mean, "
            + "disp_epe_bad_0.5px ... disp_temp_epe_bad_3px; bad-pixel shares in percent) and a table on stderr.")

    @Option(help: "The prediction: a disparity.npy [T, H, W], an `infer` output folder, or a result.tar holding one.")
    var prediction: String
    @Option(help: ArgumentHelp(
        "The ground truth: a .npy [T, H, W] (non-finite = none), or a folder or tar of per-frame PFM (non-finite = none), "
            + "KITTI 16-bit PNG (0 = none) or Sintel RGB PNG (0 = none) files, paired with the frames in name order."))
    var groundTruth: String
    @Option(help: "A 0/1 (or bool) .npy [T, H, W]: only its set pixels count, beside the ground truth's own gaps.")
    var valid: String?
    @Option(help: "Pixels dropped on every side of every frame before scoring.")
    var crop: Int = 0

    func run() throws {
        let report = try SequenceEvaluation.run(prediction: URL(fileURLWithPath: prediction),
                                                groundTruth: URL(fileURLWithPath: groundTruth),
                                                valid: valid.map { URL(fileURLWithPath: $0) }, crop: crop)
        for warning in report.warnings { printError("warning: \(warning)") }
        printError(Self.table(report))
        print(Self.json(report.metrics))
    }

    /// The metrics as one flat JSON object, in the reference's order. Every value is finite by construction
    /// (a sum over finite float32 errors divided by a count, or 0).
    static func json(_ metrics: EndpointErrorMetrics) -> String {
        let members = metrics.namedValues.map { "\"\($0.name)\": \($0.value)" }
        return "{" + members.joined(separator: ", ") + "}"
    }

    /// A table for people: one row per error video, the mean and the bad-pixel shares, and the denominator.
    static func table(_ report: EvaluationReport) -> String {
        let metrics = report.metrics
        var lines = ["\(report.frames) frames of \(report.width)x\(report.height)"
            + (report.crop > 0 ? ", cropped by \(report.crop) to \(metrics.width)x\(metrics.height)" : "")
            + "; ground truth: \(report.groundTruthFormat)"]
        let header = ["", "mean px"] + ErrorSummary.thresholdNames.map { ">\($0) px" } + ["pixels scored"]
        func row(_ cells: [String]) -> String {
            cells[0].padding(toLength: 13, withPad: " ", startingAt: 0)
                + cells.dropFirst().map { String(repeating: " ", count: max(1, 14 - $0.count)) + $0 }.joined()
        }
        lines.append(row(header))
        for (label, summary) in [("EPE", metrics.endpoint), ("temporal EPE", metrics.temporal)] {
            let shares = ErrorSummary.thresholds.indices.map { String(format: "%.3f %%", summary.badPercent($0)) }
            lines.append(row([label, String(format: "%.5f", summary.mean)] + shares + ["\(summary.nonZero)"]))
        }
        lines.append("(pixels scored: those with a non-zero error, the reference's denominator)")
        return lines.joined(separator: "\n")
    }
}
