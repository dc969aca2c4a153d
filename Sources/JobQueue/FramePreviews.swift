// A stored frame's disparity with the video's colour scale as far as it is known: what the API's preview
// route colours on request, while the job runs and after, without waiting for the finishing step.
import Foundation

/// One stored frame's float32 disparity (little-endian, row-major H × W) and the smallest and largest
/// finite disparity of every frame the job has stored so far (both nil while none has a finite value).
public struct StoredDisparity: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public let disparity: Data
    public let lower: Float?
    public let upper: Float?

    public init(height: Int, width: Int, disparity: Data, lower: Float?, upper: Float?) {
        self.height = height
        self.width = width
        self.disparity = disparity
        self.lower = lower
        self.upper = upper
    }
}

extension JobStore {
    /// The frame named `name` (its result files' name) of a job with per-frame rows, with the scale of the
    /// frames stored so far (once every frame is stored, the finishing step's scale); nil when that frame
    /// is not stored (yet), or the job's results are whole files (stored before migration 0006).
    public func storedDisparity(id: UUID, name: String) throws -> StoredDisparity? {
        try pool.withConnection { connection in
            guard let frame = try connection.execute(Queries.frameDisparityByName, [.uuid(id), .text(name)], binaryResults: true).first
            else { return nil }
            let height = try frame.int(0), width = try frame.int(1)
            let disparity = try frame.data(2)
            guard disparity.count == height * width * 4 else {
                throw PostgresError.decoding("frame '\(name)' of job \(id) is not \(width)x\(height)")
            }
            var lower: Float?, upper: Float?
            if let range = try connection.execute(Queries.disparityRange, [.uuid(id)]).first, !range.isNull(0), !range.isNull(1) {
                lower = Float(try range.double(0))
                upper = Float(try range.double(1))
            }
            return StoredDisparity(height: height, width: width, disparity: disparity, lower: lower, upper: upper)
        }
    }
}

extension Queries {
    /// One frame's size and float32 disparity, by its name. Binary. $1 job, $2 name.
    static let frameDisparityByName = Query(name: "frame_disparity_by_name", sql: """
        SELECT height, width, disparity FROM job_frames WHERE job_id = $1 AND name = $2
        """)
}
