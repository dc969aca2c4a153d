// Wiring the network to files: a PyTorch checkpoint on disk into DynamicStereoNetwork, strictly.
import Checkpoint
import DynamicStereo
import Foundation

extension DynamicStereoNetwork {
    /// Loads a PyTorch checkpoint (`dynamic_stereo_sf.pth`, `dynamic_stereo_dr_sf.pth` or one in their format),
    /// refusing weights that do not fit the network (missing, unexpected, mis-shaped), and refusing, before any
    /// kernel runs, a processor without the features the kernels were compiled for (`ProcessorCheck`).
    public init(checkpoint: URL) throws {
        try ProcessorCheck.requireBuildTarget()
        try self.init(stateDict: try StateDict.load(checkpoint).floatTensors())
    }
}

extension StereoVideoEstimator {
    /// An estimator on the network of a PyTorch checkpoint (see `DynamicStereoNetwork.init(checkpoint:)`).
    public convenience init(checkpoint: URL) throws {
        self.init(network: try DynamicStereoNetwork(checkpoint: checkpoint))
    }
}
