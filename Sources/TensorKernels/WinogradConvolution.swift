import Foundation

// The fast Winograd convolutions on the padded layouts of BoxConvolution.swift (3x3 in space, any odd number
// of taps in time) and TapConvolution.swift (5 taps along width or height), with the same contract as the
// tap-shifted kernels they stand in for: read an input buffer with zero gaps, add the convolution into an
// output grid. Winograd.swift has the matrices and the plain references.
//
// Work is split into blocks of whole tile rows, N tiles each, one block at a time per core (rows of the frames
// that read the same time taps for 2-D and 3-D, tile rows of one frame or several along height, grid rows
// along width):
//   1. input transform, channel by channel: V [ξ, K, N] = Bᵀ d (B), written straight into the layout the
//      products read;
//   2. one sgemm per transform position ξ: M_ξ [Cout, N] = U_ξ [Cout, K] · V_ξ [K, N] (α² of them in 2-D,
//      α in 1-D), where K is the input channels (times the time taps that read a frame of the video);
//   3. output transform, channel by channel: Y = Aᵀ M (A), added into the grid.
// Only one block's transformed operands exist per core at a time (a few MB), never the whole window's.
//
// Vectorisation: a tile's inputs along x are m apart, so every row is first split into m phase vectors
// (element j of phase p is x = j·m + p); tile j's k-th input is then element j + k/m of phase k mod m, and each
// transform step is a unit-stride loop over all tiles of the block. Phase vectors are L = TX + (α-1)/m long
// for TX tiles per row; the extra (α-1)/m columns per row are computed and discarded (2.5% at 160 columns).

/// Tiles per block that the fast kernels aim for (sgemm width N): wide enough for sgemm's own blocking, small
/// enough for one block's operands to stay in the caches. `DYNSTEREO_WINOGRAD_TILES` overrides it.
public let winogradBlockTiles: Int = {
    if let text = ProcessInfo.processInfo.environment["DYNSTEREO_WINOGRAD_TILES"], let n = Int(text), n > 0 { return n }
    return 256
}()

/// Outputs per tile of the 3x3 and 5-tap Winograd paths (0: the tap-shifted kernels only), chosen by measuring
/// the network end to end; `DYNSTEREO_WINOGRAD_3X3` and `DYNSTEREO_WINOGRAD_5` override them (0, 2, 4, 6).
public enum WinogradPolicy {
    static func setting(_ name: String, default value: Int) -> Int {
        guard let text = ProcessInfo.processInfo.environment[name], let m = Int(text) else { return value }
        return [0, 2, 4, 6].contains(m) ? m : value
    }
    /// The tile for 3x3 spatial kernels, or nil for none.
    public static let box: WinogradTile? = {
        let m = setting("DYNSTEREO_WINOGRAD_3X3", default: 4)
        return m > 0 ? WinogradTile(outputs: m, taps: 3) : nil
    }()
    /// The tile for 5-tap kernels along width or height, or nil for none.
    public static let line: WinogradTile? = {
        let m = setting("DYNSTEREO_WINOGRAD_5", default: 4)
        return m > 0 ? WinogradTile(outputs: m, taps: 5) : nil
    }()
    /// Along time, windows of 4 or 5 frames are one tile, F(T, 5) (9 products per pixel for 5 frames, against the
    /// direct path's 19 once the taps that read only padding are cut); longer windows use `line`'s tile; shorter
    /// ones stay direct. `DYNSTEREO_WINOGRAD_TIME=0` turns it off.
    static let timeTiles: [WinogradTile]? = {
        ProcessInfo.processInfo.environment["DYNSTEREO_WINOGRAD_TIME"] == "0" ? nil
            : [WinogradTile(outputs: 4, taps: 5), WinogradTile(outputs: 5, taps: 5)]
    }()
    public static func time(frames: Int, taps: Int) -> WinogradTile? {
        guard let tiles = timeTiles, taps == 5, frames >= 4 else { return nil }
        return frames <= 5 ? tiles[frames - 4] : line
    }

    /// Whether a convolution of `tiles` output tiles, each costing `products` multiply-adds per output channel
    /// and input channel, is worth the transforms: narrow layers and tiny frames stay on the direct path,
    /// where the transforms (per channel, not per channel pair) would cost more than they save.
    static func worthwhile(inputs: Int, outputs: Int, tiles: Int) -> Bool {
        inputs >= 16 && outputs >= 16 && tiles >= 64
    }
}

/// `0..<count` in ranges of at most `per` whose sizes differ by one at most: as few as that allows, but
/// enough that the blocks (`outer` of them per range) come in a multiple of the cores, two per core at least,
/// so that `parallelClaims` shares them evenly. Five frames of one block each left one core idle for a sixth
/// of every 3x3 layer at 128x256 (3 blocks against 2).
private func blockRanges(_ count: Int, atMost per: Int, outer: Int) -> [Range<Int>] {
    let cores = ComputeThreads.count
    var parts = (count + per - 1) / per
    while parts < count && (outer * parts % cores != 0 || outer * parts < 2 * cores) { parts += 1 }
    return (0..<parts).map { count * $0 / parts ..< count * ($0 + 1) / parts }
}

/// A block of the box convolution: tile rows `(frame, ty)` of frames that read the same time taps `dt` in
/// `taps`, so that they share one set of products (K is those taps' columns).
private struct BoxBlock {
    var rows: [(frame: Int, ty: Int)]
    let taps: ClosedRange<Int>
    var cost: Int { rows.count * taps.count }
}

/// The box convolution's blocks: the tile rows of each run of frames that read the same time taps, in chunks
/// of at most `per` rows, split further (the costliest first) until they come in a multiple of the cores.
/// Rows of several frames share a block, so that small frames still give the products a wide N: at 1/8 scale
/// of 128x256 (five frames of four tile rows), one frame's rows per block gave N = 18.
private func boxBlocks(frames: Int, tilesY: Int, radius rt: Int, atMost per: Int) -> [BoxBlock] {
    var runs: [BoxBlock] = []
    for frame in 0..<frames {
        let taps = max(-rt, -frame)...min(rt, frames - 1 - frame)
        let rows = (0..<tilesY).map { (frame: frame, ty: $0) }
        if let last = runs.last, last.taps == taps { runs[runs.count - 1].rows += rows } else { runs.append(BoxBlock(rows: rows, taps: taps)) }
    }
    var blocks: [BoxBlock] = []
    for run in runs {
        let parts = (run.rows.count + per - 1) / per
        for part in 0..<parts {
            let range = run.rows.count * part / parts ..< run.rows.count * (part + 1) / parts
            blocks.append(BoxBlock(rows: Array(run.rows[range]), taps: run.taps))
        }
    }
    let cores = ComputeThreads.count
    while blocks.count % cores != 0 {
        guard let widest = blocks.indices.filter({ blocks[$0].rows.count > 1 }).max(by: { blocks[$0].cost < blocks[$1].cost }) else { break }
        let rows = blocks[widest].rows
        blocks[widest].rows = Array(rows[..<(rows.count / 2)])
        blocks.insert(BoxBlock(rows: Array(rows[(rows.count / 2)...]), taps: blocks[widest].taps), at: widest + 1)
    }
    return blocks
}

/// One core's scratch: every vector a block needs, allocated once per call and core.
private struct WinogradScratch {
    let memory: UnsafeMutablePointer<Float>
    let slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    private var next = 0
    private let capacity: Int

    init(floats: Int, slots count: Int) {
        capacity = floats
        memory = .allocate(capacity: floats)
        slots = .allocate(capacity: count)
    }

    /// The next `count` floats, zeroed when asked.
    mutating func take(_ count: Int, zeroed: Bool = false) -> UnsafeMutablePointer<Float> {
        precondition(next + count <= capacity, "WinogradScratch: \(next + count) floats of \(capacity)")
        let p = memory + next
        next += count
        if zeroed { p.initialize(repeating: 0, count: count) }
        return p
    }

    func release() {
        memory.deallocate()
        slots.deallocate()
    }
}

/// Phase split of one row: phase p of `destination` (`stride` floats apart) gets row[j·m + p] for j < length,
/// zero past the row's `count` floats.
@inline(__always)
private func splitPhases(_ row: UnsafePointer<Float>, count: Int, m: Int, length: Int,
                         into destination: UnsafeMutablePointer<Float>, stride: Int) {
    // Tiles whose m inputs all lie in the row, then the rest element by element.
    let whole = min(length, count / m)
    switch m {
    case 4:
        let (p0, p1, p2, p3) = (destination, destination + stride, destination + 2 * stride, destination + 3 * stride)
        for j in 0..<whole {
            // 4j + 3 < count: inside the row.
            p0[j] = row[4 * j]; p1[j] = row[4 * j + 1]; p2[j] = row[4 * j + 2]; p3[j] = row[4 * j + 3]
        }
    case 2:
        let (p0, p1) = (destination, destination + stride)
        for j in 0..<whole { p0[j] = row[2 * j]; p1[j] = row[2 * j + 1] }
    default:
        for j in 0..<whole { for p in 0..<m { destination[p * stride + j] = row[j * m + p] } }
    }
    for j in whole..<length {
        for p in 0..<m {
            let x = j * m + p
            destination[p * stride + j] = x < count ? row[x] : 0
        }
    }
}

/// The inverse for output rows: row[x] (+)= phase (x mod m)[x / m] for x < count.
@inline(__always)
private func mergePhases(_ phases: UnsafePointer<Float>, stride: Int, m: Int, count: Int,
                         into row: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let whole = count / m
    switch (m, accumulate) {
    case (4, true):
        let (p0, p1, p2, p3) = (phases, phases + stride, phases + 2 * stride, phases + 3 * stride)
        for j in 0..<whole {
            row[4 * j] += p0[j]; row[4 * j + 1] += p1[j]; row[4 * j + 2] += p2[j]; row[4 * j + 3] += p3[j]
        }
    case (4, false):
        let (p0, p1, p2, p3) = (phases, phases + stride, phases + 2 * stride, phases + 3 * stride)
        for j in 0..<whole {
            row[4 * j] = p0[j]; row[4 * j + 1] = p1[j]; row[4 * j + 2] = p2[j]; row[4 * j + 3] = p3[j]
        }
    case (2, true):
        for j in 0..<whole { row[2 * j] += phases[j]; row[2 * j + 1] += phases[stride + j] }
    case (2, false):
        for j in 0..<whole { row[2 * j] = phases[j]; row[2 * j + 1] = phases[stride + j] }
    default:
        for j in 0..<whole { for p in 0..<m {
            if accumulate { row[j * m + p] += phases[p * stride + j] } else { row[j * m + p] = phases[p * stride + j] }
        }}
    }
    for x in (whole * m)..<count {
        let value = phases[(x % m) * stride + x / m]
        if accumulate { row[x] += value } else { row[x] = value }
    }
}

/// The "same" convolution (stride 1, padding 1 in space and kt/2 in time) of the channel-wise concatenation of
/// frames-major `inputs` (each [T, Ci, H, W]) with `kernel`, plus `bias` [Cout], then ReLU when `relu` is set:
/// [T, Cout, H, W], by Winograd's F(m x m, 3 x 3) per frame with the time taps summed inside the products. What
/// `boxConvolution` computes, read from the tensors and written into the output directly: no padded copy of the
/// input and no output grid (for the flow head over 20 frames of 480x640, 600 MB less at the window's peak).
public func winogradBoxConvolution(_ inputs: [Tensor], _ kernel: WinogradBoxKernel, bias: [Float], relu: Bool = false,
                                   blockTiles: Int = winogradBlockTiles) -> Tensor {
    precondition(!inputs.isEmpty, "winogradBoxConvolution: no input")
    let (t, _, h, w) = inputs[0].dims4
    // Input channel c of the concatenation is channel local[c] of inputs[part[c]].
    var part: [Int] = [], local: [Int] = []
    for (index, tensor) in inputs.enumerated() {
        let (pt, pc, ph, pw) = tensor.dims4
        precondition(pt == t && ph == h && pw == w, "winogradBoxConvolution: input \(tensor.shape) beside \(inputs[0].shape)")
        part += Array(repeating: index, count: pc)
        local += Array(0..<pc)
    }
    precondition(part.count == kernel.inputs && bias.count == kernel.outputs,
                 "winogradBoxConvolution: \(part.count) input channels and \(bias.count) biases for a kernel of \(kernel.inputs) -> \(kernel.outputs)")
    let cout = kernel.outputs
    let plane = h * w
    var out = Tensor(shape: [t, cout, h, w]) { out in
        parallelFor(t * cout, minimumPerThread: 16) { planes in
            for item in planes { (out.baseAddress! + item * plane).initialize(repeating: bias[item % cout], count: plane) }
        }
    }
    withBaseAddresses(inputs) { sources in
        let channels = inputs.map { $0.shape[1] }
        out.data.withUnsafeMutableBufferPointer { ob in
            let target = ob.baseAddress!
            accumulateWinogradBox(kernel, frames: t, height: h, width: w, blockTiles: blockTiles,
                                  input: { c, f, y in sources[part[c]] + ((f * channels[part[c]] + local[c]) * h + y) * w },
                                  output: { o, f, y in target + ((f * cout + o) * h + y) * w })
        }
    }
    if relu { out.formRelu() }
    return out
}

/// `body` with the base address of every tensor's storage.
private func withBaseAddresses<R>(_ tensors: [Tensor], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func step(_ index: Int, _ done: [UnsafePointer<Float>]) -> R {
        guard index < tensors.count else { return body(done) }
        return tensors[index].data.withUnsafeBufferPointer { step(index + 1, done + [$0.baseAddress!]) }
    }
    return step(0, [])
}

/// The Winograd box convolution's core: adds the convolution of the input rows `input(c, frame, y)` (W floats,
/// 0 <= y < H) into the output rows `output(o, frame, y)`.
private func accumulateWinogradBox(_ kernel: WinogradBoxKernel, frames: Int, height: Int, width: Int, blockTiles: Int,
                                   input row: (Int, Int, Int) -> UnsafePointer<Float>,
                                   output target: (Int, Int, Int) -> UnsafeMutablePointer<Float>) {
    let rt = kernel.frameTaps / 2
    let tile = kernel.tile
    let (m, alpha) = (tile.outputs, tile.inputs)
    let (cin, cout) = (kernel.inputs, kernel.outputs)
    let columns = kernel.frameTaps * cin                 // K of the products: (dt, input channel)
    let (tilesX, tilesY) = ((width + m - 1) / m, (height + m - 1) / m)
    let length = tilesX + (alpha - 1) / m                // phase vector per tile row
    let rowLength = width + 2                            // x = -1 ... W of a padded input row
    let blocks = boxBlocks(frames: frames, tilesY: tilesY, radius: rt, atMost: max(1, blockTiles / length))
    let most = blocks.map(\.rows.count).max()!
    let n = most * length                                // N at most
    let plane = alpha * n                                // one channel of V or M: [ξy, N]
    let pad = (alpha - 1) / m                            // the phase reads past the last tile
    let (input, output) = (tile.inputProgram, tile.outputProgram)
    let temporaries = max(input.temporaryCount, output.temporaryCount) * max(plane, rowLength)
    let floats = alpha * alpha * (columns + cout) * n + alpha * rowLength + m * (plane + pad)
        + m * plane + alpha * most * width + 2 * rowLength + temporaries
    BLAS.prepareSerialCalls()
    kernel.weights.withUnsafeBufferPointer { ub in
    let u = ub.baseAddress!
    // Frames inside the video read every time tap, those at its ends fewer: the costly blocks go first, so
    // that the cheap ones at the end even out the cores.
    let order = blocks.indices.sorted { blocks[$0].cost > blocks[$1].cost }
    parallelClaims(order.count) { claim in
        var scratch = WinogradScratch(floats: floats, slots: max(input.slotCount, output.slotCount))
        defer { scratch.release() }
        let v = scratch.take(alpha * alpha * columns * n)     // [ξx, K, ξy, N]: V_ξ has ldb = α·N
        let mm = scratch.take(alpha * alpha * cout * n)       // [ξx, Cout, ξy, N]
        let rows = scratch.take(alpha * rowLength)            // the y-pass of one tile row, [ξy, x + 1]
        // [p, ξy, N], + the last shifted reads; zeroed once, so that the columns past the last tile (computed
        // and discarded) never see uninitialised floats.
        let phases = scratch.take(m * (plane + pad), zeroed: true)
        let z = scratch.take(m * plane)                       // output x-pass, [s, ξy, N]
        let merged = scratch.take(alpha * most * width)       // [ξy, tile row, x]
        let zeros = scratch.take(rowLength, zeroed: true), junk = scratch.take(rowLength)
        let temporary = scratch.take(temporaries)
        let slots = scratch.slots
        while let claimed = claim() {
            let block = blocks[order[claimed]]
            let count = block.rows.count * length             // N of this block
            // Time taps whose frame lies in the video: a contiguous range of (dt, channel) columns.
            let (dtLo, dtHi) = (block.taps.lowerBound, block.taps.upperBound)
            for dt in dtLo...dtHi {
                for c in 0..<cin {
                    let k = (dt + rt) * cin + c
                    for (index, (frame, ty)) in block.rows.enumerated() {
                        // y-pass over rows iy = ty·m - 1 ..< ty·m - 1 + α, those outside the frame zeros, into
                        // x = 0 ..< W of padded rows x = -1 ... W whose two ends are the zero padding.
                        for a in 0..<alpha {
                            let iy = ty * m - 1 + a
                            slots[a] = iy >= 0 && iy < height ? UnsafeMutablePointer(mutating: row(c, frame + dt, iy)) : zeros
                        }
                        for t in 0..<input.temporaryCount { slots[alpha + t] = temporary + t * rowLength }
                        for a in 0..<alpha { slots[alpha + input.temporaryCount + a] = rows + a * rowLength + 1 }
                        input.run(slots, count: width, accumulate: false)
                        for a in 0..<alpha {
                            (rows + a * rowLength)[0] = 0
                            (rows + a * rowLength)[width + 1] = 0
                            splitPhases(rows + a * rowLength, count: rowLength, m: m, length: length,
                                        into: phases + a * count + index * length, stride: plane + pad)
                        }
                    }
                    // x-pass over the whole block: input k of tile j is phase k mod m at j + k/m.
                    for b in 0..<alpha { slots[b] = phases + (b % m) * (plane + pad) + b / m }
                    for t in 0..<input.temporaryCount { slots[alpha + t] = temporary + t * plane }
                    for b in 0..<alpha { slots[alpha + input.temporaryCount + b] = v + (b * columns + k) * alpha * n }
                    input.run(slots, count: alpha * count, accumulate: false)
                }
            }
            let (kLo, kCount) = ((dtLo + rt) * cin, (dtHi - dtLo + 1) * cin)
            for a in 0..<alpha {
                for b in 0..<alpha {
                    BLAS.serialSgemm(transA: false, transB: false, m: cout, n: count, k: kCount, alpha: 1,
                                     a: u + (a * alpha + b) * cout * columns + kLo, lda: columns,
                                     b: v + (b * columns + kLo) * alpha * n + a * count, ldb: alpha * n,
                                     beta: 0, c: mm + b * cout * alpha * n + a * count, ldc: alpha * n)
                }
            }
            for o in 0..<cout {
                // x-pass: Aᵀ over ξx for every ξy and tile at once, then back to x order.
                for b in 0..<alpha { slots[b] = mm + (b * cout + o) * alpha * n }
                for t in 0..<output.temporaryCount { slots[alpha + t] = temporary + t * plane }
                for s in 0..<m { slots[alpha + output.temporaryCount + s] = z + s * plane }
                output.run(slots, count: alpha * count, accumulate: false)
                let rowCount = block.rows.count
                for a in 0..<alpha {
                    for index in 0..<rowCount {
                        mergePhases(z + a * count + index * length, stride: plane, m: m, count: width,
                                    into: merged + (a * rowCount + index) * width, accumulate: false)
                    }
                }
                // y-pass, added into the grid rows that lie in the frame.
                for (index, (frame, ty)) in block.rows.enumerated() {
                    for a in 0..<alpha { slots[a] = merged + (a * rowCount + index) * width }
                    for t in 0..<output.temporaryCount { slots[alpha + t] = temporary + t * rowLength }
                    for s in 0..<m {
                        let y = ty * m + s
                        slots[alpha + output.temporaryCount + s] = y < height ? target(o, frame, y) : junk
                    }
                    output.run(slots, count: width, accumulate: true)
                }
            }
        }
    }
    }
}

/// dst += the convolution of `source` with tap-major weights [r, Cout, Cin] along the axis of `layout`, as
/// `accumulateTapConvolution` computes it, by Winograd's F(m, r): `tile.taps` must be 2·radius + 1. Along time
/// the tiles run over frames and the frames outside the video are zeros (the direct path cuts them instead).
public func accumulateWinogradTapConvolution(tile: WinogradTile, weights: UnsafePointer<Float>, outputs cout: Int,
                                             inputs cin: Int, layout: TapLayout,
                                             source: UnsafePointer<Float>, sourceStride: Int,
                                             destination: UnsafeMutablePointer<Float>, destinationStride: Int,
                                             blockTiles: Int = winogradBlockTiles) {
    let radius = layout.radius
    precondition(tile.taps == 2 * radius + 1,
                 "accumulateWinogradTapConvolution: F(\(tile.outputs), \(tile.taps)) along \(layout.axis), radius \(radius)")
    let (m, alpha) = (tile.outputs, tile.inputs)
    let (frames, height, width) = (layout.frames, layout.height, layout.width)
    let plane = height * width
    // U [α, Cout, Cin], per call: α·r multiply-adds per weight, about a percent of the products.
    let pairs = cout * cin
    let u = UnsafeMutablePointer<Float>.allocate(capacity: alpha * pairs)
    defer { u.deallocate() }
    let g = tile.weightTransform.map { $0.map(Float.init) }
    parallelFor(alpha, minimumPerThread: 1) { range in
        for xi in range {
            let target = u + xi * pairs
            target.initialize(repeating: 0, count: pairs)
            for k in 0..<tile.taps where g[xi][k] != 0 {
                let (w, c) = (weights + k * pairs, g[xi][k])
                for i in 0..<pairs { target[i] += c * w[i] }
            }
        }
    }
    // Blocks: whole grid rows along width (N = rows · L); tile rows along height, of one frame or several
    // (N = rows · W; small frames' rows share a block, for a wide N); one tile of frames and a run of pixels
    // along time (N = pixels).
    let axis = layout.axis
    let tilesX = (width + m - 1) / m
    let tilesY = (height + m - 1) / m
    let length: Int, lines: Int, outer: Int
    switch axis {
    case .width: (length, lines, outer) = (tilesX + (alpha - 1) / m, frames * height, 1)
    case .height: (length, lines, outer) = (width, frames * tilesY, 1)
    case .time: (length, lines, outer) = (1, plane, (frames + m - 1) / m)
    }
    let groups = blockRanges(lines, atMost: max(1, blockTiles / length), outer: outer)
    let most = groups.map(\.count).max()!
    let n = most * length
    let pad = (alpha - 1) / m
    let rowLength = max(width + 2 * radius, n)
    let (input, output) = (tile.inputProgram, tile.outputProgram)
    let temporaries = max(input.temporaryCount, output.temporaryCount) * n
    let floats = alpha * (cin + cout) * n + m * (n + pad) + m * n + 2 * rowLength + temporaries
    BLAS.prepareSerialCalls()
    parallelClaims(outer * groups.count) { claim in
        var scratch = WinogradScratch(floats: floats, slots: max(input.slotCount, output.slotCount))
        defer { scratch.release() }
        let v = scratch.take(alpha * cin * n)            // [ξ, Cin, N]
        let mm = scratch.take(alpha * cout * n)          // [ξ, Cout, N]
        let phases = scratch.take(m * (n + pad), zeroed: true)   // width: [p, N], + the last shifted reads
        let z = scratch.take(m * n)                      // width: output phases [s, N]
        let zeros = scratch.take(rowLength, zeroed: true), junk = scratch.take(rowLength)
        let temporary = scratch.take(temporaries)
        let slots = scratch.slots
        while let block = claim() {
            let (outerIndex, group) = (block / groups.count, groups[block % groups.count])
            let count = group.count * length
            for c in 0..<cin {
                let channel = source + c * sourceStride + layout.lead
                switch axis {
                case .width:
                    // Row q's padded inputs x = -r ..< W + r are the row and the zero gaps either side of it.
                    for (index, q) in group.enumerated() {
                        splitPhases(channel + q * (width + radius) - radius, count: width + 2 * radius, m: m,
                                    length: length, into: phases + index * length, stride: n + pad)
                    }
                    for k in 0..<alpha { slots[k] = phases + (k % m) * (n + pad) + k / m }
                    for t in 0..<input.temporaryCount { slots[alpha + t] = temporary + t * n }
                    for k in 0..<alpha { slots[alpha + input.temporaryCount + k] = v + (k * cin + c) * n }
                    input.run(slots, count: count, accumulate: false)
                case .height:
                    for (index, line) in group.enumerated() {
                        let (frame, ty) = line.quotientAndRemainder(dividingBy: tilesY)
                        // Rows -r ..< H + r of a frame are the frame and its zero gap rows; later ones are zeros.
                        for k in 0..<alpha {
                            let iy = ty * m - radius + k
                            slots[k] = iy < height + radius
                                ? UnsafeMutablePointer(mutating: channel + layout.rowOffset(frame: frame, row: 0) + iy * width)
                                : zeros
                        }
                        for t in 0..<input.temporaryCount { slots[alpha + t] = temporary + t * width }
                        for k in 0..<alpha { slots[alpha + input.temporaryCount + k] = v + (k * cin + c) * n + index * width }
                        input.run(slots, count: width, accumulate: false)
                    }
                case .time:
                    // Frames outside the video are zeros: the layout has no gap frames.
                    for k in 0..<alpha {
                        let frame = outerIndex * m - radius + k
                        slots[k] = frame >= 0 && frame < frames
                            ? UnsafeMutablePointer(mutating: channel + frame * plane + group.lowerBound) : zeros
                    }
                    for t in 0..<input.temporaryCount { slots[alpha + t] = temporary + t * n }
                    for k in 0..<alpha { slots[alpha + input.temporaryCount + k] = v + (k * cin + c) * n }
                    input.run(slots, count: count, accumulate: false)
                }
            }
            for xi in 0..<alpha {
                BLAS.serialSgemm(transA: false, transB: false, m: cout, n: count, k: cin, alpha: 1,
                                 a: u + xi * pairs, lda: cin, b: v + xi * cin * n, ldb: n,
                                 beta: 0, c: mm + xi * cout * n, ldc: n)
            }
            for o in 0..<cout {
                let grid = destination + o * destinationStride
                switch axis {
                case .width:
                    for k in 0..<alpha { slots[k] = mm + (k * cout + o) * n }
                    for t in 0..<output.temporaryCount { slots[alpha + t] = temporary + t * n }
                    for s in 0..<m { slots[alpha + output.temporaryCount + s] = z + s * n }
                    output.run(slots, count: count, accumulate: false)
                    for (index, q) in group.enumerated() {
                        mergePhases(z + index * length, stride: n, m: m, count: width, into: grid + q * (width + radius),
                                    accumulate: true)
                    }
                case .height:
                    for (index, line) in group.enumerated() {
                        let (frame, ty) = line.quotientAndRemainder(dividingBy: tilesY)
                        for k in 0..<alpha { slots[k] = mm + (k * cout + o) * n + index * width }
                        for t in 0..<output.temporaryCount { slots[alpha + t] = temporary + t * width }
                        for s in 0..<m {
                            let y = ty * m + s
                            slots[alpha + output.temporaryCount + s] = y < height
                                ? grid + layout.rowOffset(frame: frame, row: y) : junk
                        }
                        output.run(slots, count: width, accumulate: true)
                    }
                case .time:
                    for k in 0..<alpha { slots[k] = mm + (k * cout + o) * n }
                    for t in 0..<output.temporaryCount { slots[alpha + t] = temporary + t * n }
                    for s in 0..<m {
                        let frame = outerIndex * m + s
                        slots[alpha + output.temporaryCount + s] = frame < frames ? grid + frame * plane + group.lowerBound : junk
                    }
                    output.run(slots, count: count, accumulate: true)
                }
            }
        }
    }
}

/// The fast 3x3 Winograd path for one input `x` [T, Cin, H, W] and a PyTorch weight [Cout, Cin, 3, 3] or
/// [Cout, Cin, kt, 3, 3] ("same" padding), for tests against the references.
public func winogradBoxConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, tile: WinogradTile,
                                   blockTiles: Int = winogradBlockTiles) -> Tensor {
    let direct = BoxKernel(weight: weight, bias: bias, winograd: nil)
    let kernel = WinogradBoxKernel(tile: tile, taps: direct.taps, frameTaps: 2 * direct.radius.t + 1)
    return winogradBoxConvolution([x], kernel, bias: direct.bias, blockTiles: blockTiles)
}

/// A 5-tap (or any odd r) convolution along width or height in the frames-major shape of `conv3d`, by Winograd's
/// F(m, r) when `tile` is given and by the tap-shifted sgemms when it is nil, for tests.
public func winogradTapConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, axis: TapAxis, tile: WinogradTile?,
                                   blockTiles: Int = winogradBlockTiles) -> Tensor {
    let (t, cin, h, w) = x.dims4
    let cout = weight.shape[0]
    let taps = weight.shape[2] * weight.shape[3] * weight.shape[4]
    let layout = TapLayout(frames: t, height: h, width: w, axis: axis, radius: taps / 2)
    let tapMajor = tapMajorWeights(weight, inputChannels: Array(0..<cin))
    var input = [Float](repeating: 0, count: cin * layout.channelStride)
    var grid = [Float](repeating: 0, count: cout * layout.gridStride)
    var out = Tensor(shape: [t, cout, h, w])
    x.data.withUnsafeBufferPointer { xb in
    input.withUnsafeMutableBufferPointer { ib in
    grid.withUnsafeMutableBufferPointer { gb in
    tapMajor.data.withUnsafeBufferPointer { wb in
    out.data.withUnsafeMutableBufferPointer { ob in
        layout.pack(xb.baseAddress!, channels: cin, into: ib.baseAddress!, stride: layout.channelStride, lead: layout.lead)
        for o in 0..<cout { (gb.baseAddress! + o * layout.gridStride).update(repeating: bias?.data[o] ?? 0, count: layout.gridStride) }
        if let tile {
            accumulateWinogradTapConvolution(tile: tile, weights: wb.baseAddress!, outputs: cout, inputs: cin, layout: layout,
                                             source: ib.baseAddress!, sourceStride: layout.channelStride,
                                             destination: gb.baseAddress!, destinationStride: layout.gridStride,
                                             blockTiles: blockTiles)
        } else {
            accumulateDirectTapConvolution(weights: wb.baseAddress!, outputs: cout, inputs: cin, layout: layout,
                                           source: ib.baseAddress!, sourceStride: layout.channelStride,
                                           destination: gb.baseAddress!, destinationStride: layout.gridStride)
        }
        layout.unpack(gb.baseAddress!, channels: cout, stride: layout.gridStride, lead: 0, into: ob.baseAddress!)
    }}}}}
    return out
}
