// The dynstereo executable: subcommands for inference, the checkpoint reader, the service and its admin.
import ArgumentParser
import Benchmarks

struct DynStereo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynstereo",
        abstract: "Temporally consistent disparity and depth from rectified stereo videos (DynamicStereo on CPU).",
        subcommands: [InferCommand.self, BenchCommand.self, CheckpointCommand.self, ServeCommand.self, WorkCommand.self,
                      MigrateCommand.self, KeysCommand.self, QueueBenchCommand.self, VolumeBenchCommand.self, DemoCommand.self,
                      EvaluateCommand.self]
    )
}

DynStereo.main()
