// `GET /jobs/{id}/preview/NNNN.png`: one frame's disparity colour-mapped on request from its stored float32
// values, as soon as the window that gives the frame is stored, on the colour scale of the frames stored so
// far. The scale can still widen until every window is stored, so a preview is marked provisional until the
// finishing step has run (the job succeeded); from then on it is exactly `color/NNNN.png`.
import Foundation
import HTTPTransport
import JobQueue
import Media

extension JobsHTTPApplication {
    /// The preview of frame `name`. Headers: `Preview-Scale: provisional|final; lower=<px>; upper=<px>` (the
    /// disparities mapped to the colour map's ends). 409 `not_ready` with Retry-After for a frame its running
    /// job has not stored yet; 404 for a frame the job does not have; 410 after retention.
    func preview(_ id: UUID, name: String, owner: UUID?) throws -> HTTPResponse {
        guard let job = try backend.job(id: id, owner: owner) else { throw APIError.notFound("no job \(id.lowercased)") }
        if let expired = job.resultsExpiredAt {
            throw APIError(.gone, "results_expired",
                           "the inputs and results of job \(id.lowercased) were deleted by retention at \(JobView.timestamp(expired))")
        }
        if let stored = try backend.storedDisparity(id: id, name: name) {
            let values = stored.disparity.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let scale = FrameRendering.scale(lower: stored.lower, upper: stored.upper)
            let colored = ColorMap.colorize(values[...], width: stored.width, height: stored.height, scale: scale)
            let final = job.status == .succeeded
            var headers = HTTPHeaders()
            headers.add(name: "Preview-Scale", value: "\(final ? "final" : "provisional"); lower=\(scale.lower); upper=\(scale.upper)")
            // A provisional image changes as windows are stored; a final one never does.
            headers.add(name: "Cache-Control", value: final ? "private, max-age=86400" : "no-store")
            return HTTPResponse(status: .ok, contentType: "image/png", bytes: Array(try PNG.encodeRGB8(colored)), headers: headers)
        }
        // A job stored before per-frame rows has its colour frames as whole files, on the final scale.
        if job.status == .succeeded, let legacy = try backend.result(id: id, path: "color/\(name).png") {
            var headers = HTTPHeaders()
            headers.add(name: "Preview-Scale", value: "final")
            return HTTPResponse(status: .ok, contentType: "image/png", bytes: Array(legacy), headers: headers)
        }
        // Answers 409 not_ready (with Retry-After) while the job may still store the frame.
        if try storedFrameWhileUnfinished(id, path: "disparity/\(name).png", owner: owner) != nil {
            throw APIError(.conflict, "not_ready", "frame '\(name)' of job \(id.lowercased) was stored just now; ask again",
                           headers: [("Retry-After", "1")])
        }
        throw APIError.notFound("job \(id.lowercased) has no stored frame '\(name)'")
    }
}
