// Disparity to coloured 3-D points in the left camera's frame, written as binary PLY (MeshLab, CloudCompare,
// Open3D and Blender open it).
import Foundation
import Media

/// The pinhole model that turns a disparity into a point: depth z = focal × baseline / d, then
/// x = (u − cx)·z / focal and y = (v − cy)·z / focal, in metres (x right, y down, z forward).
public struct StereoCamera: Equatable, Sendable {
    public let focalPx: Double
    public let baselineM: Double
    /// Principal point in pixels; nil means the image centre, (W − 1) / 2 and (H − 1) / 2.
    public let cxPx: Double?
    public let cyPx: Double?
    /// Points farther than this (metres) are dropped; nil keeps every point with positive disparity.
    public let maxDepthM: Double?

    public init(focalPx: Double, baselineM: Double, cxPx: Double? = nil, cyPx: Double? = nil, maxDepthM: Double? = nil) {
        self.focalPx = focalPx
        self.baselineM = baselineM
        self.cxPx = cxPx
        self.cyPx = cyPx
        self.maxDepthM = maxDepthM
    }
}

/// Point clouds as binary little-endian PLY: float x, y, z and uchar red, green, blue per vertex.
public enum PointCloud {
    /// One frame's cloud: every pixel with disparity > 0 (and depth within `maxDepthM`), coloured from `left`.
    /// `disparity` is row-major `left.width × left.height`.
    public static func ply(disparity: ArraySlice<Float>, left: RGBImage, camera: StereoCamera) -> Data {
        let (width, height) = (left.width, left.height)
        precondition(disparity.count == width * height, "ply: \(disparity.count) disparities for \(width)x\(height)")
        let cx = camera.cxPx ?? Double(width - 1) / 2, cy = camera.cyPx ?? Double(height - 1) / 2
        let focalTimesBaseline = camera.focalPx * camera.baselineM
        var body = Data()
        body.reserveCapacity(width * height * 15)
        var count = 0
        for v in 0..<height {
            for u in 0..<width {
                let offset = v * width + u
                let d = Double(disparity[disparity.startIndex + offset])
                guard d.isFinite, d > 0 else { continue }
                let z = focalTimesBaseline / d
                if let maxDepth = camera.maxDepthM, z > maxDepth { continue }
                let point = [Float((Double(u) - cx) * z / camera.focalPx), Float((Double(v) - cy) * z / camera.focalPx), Float(z)]
                for value in point { withUnsafeBytes(of: value.bitPattern.littleEndian) { body.append(contentsOf: $0) } }
                body.append(contentsOf: left.pixels[offset * 3..<offset * 3 + 3])
                count += 1
            }
        }
        let header = """
            ply
            format binary_little_endian 1.0
            comment dynstereo point cloud: metres in the left camera frame (x right, y down, z forward)
            element vertex \(count)
            property float x
            property float y
            property float z
            property uchar red
            property uchar green
            property uchar blue
            end_header

            """
        return Data(header.utf8) + body
    }
}
