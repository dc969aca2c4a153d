// Winograd's minimal filtering F(m, r): the transforms behind the fast 3x3 and 5-tap convolutions, and the
// plain per-tile references the fast kernels (WinogradConvolution.swift) are tested against.
//
// A correlation of m outputs with an r-tap kernel g over α = m + r - 1 inputs d, y_i = Σ_k g_k d_{i+k}, is
//
//     y = Aᵀ [(G g) ⊙ (Bᵀ d)]          (2-D: Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A)
//
// with α multiplications instead of m·r (Lavin and Gray 2016, after Toom and Cook). The matrices come from
// α - 1 finite interpolation points p_j and the point at infinity:
//
//     Aᵀ[i][j] = p_j^i                          Aᵀ[i][∞] = 1 if i = m - 1, else 0        (m × α)
//     G[j][k]  = p_j^k / Π_{l≠j} (p_j - p_l)     G[∞][k]  = 1 if k = r - 1, else 0        (α × r)
//     Bᵀ[j]    = coefficients of Π_{l≠j} (x - p_l)   Bᵀ[∞] = coefficients of Π_l (x - p_l) (α × α)
//
// (y is the transpose of the polynomial product that evaluates at the points and interpolates; the
// interpolation's denominators sit in G, which is applied once to the weights, so Bᵀ stays small integers
// and halves.) The points are 0, ±1, ±2, ±1/2, ... in that order. Larger tiles save more multiplications and
// lose more precision: fp32 against fp64, relative to the output's RMS, F(2,3) ~3e-7, F(4,3) ~1e-6,
// F(6,3) ~3e-6, so the network uses F(4x4, 3x3) and F(4, 5) (chosen by measuring end to end).
import Foundation

/// The matrices of one Winograd tile F(m, r), and the transforms that apply them to vectors of tiles.
public struct WinogradTile: Sendable, Equatable {
    /// m: outputs per tile along one axis.
    public let outputs: Int
    /// r: kernel taps along that axis.
    public let taps: Int
    /// α = m + r - 1: inputs per tile along the axis, and the products per output tile (α² in 2-D).
    public var inputs: Int { outputs + taps - 1 }
    /// Aᵀ (m × α), G (α × r), Bᵀ (α × α), exact in double.
    public let outputTransform: [[Double]], weightTransform: [[Double]], inputTransform: [[Double]]
    /// Bᵀ and Aᵀ as straight-line programs over vectors, with the shared sums of each ±p pair of points.
    let inputProgram: TransformProgram, outputProgram: TransformProgram

    /// F(`outputs`, `taps`) on the points 0, ±1, ±2, ±1/2, ±3, ±1/3.
    public init(outputs m: Int, taps r: Int) {
        precondition(m >= 1 && r >= 1 && m + r - 1 <= 12, "WinogradTile: F(\(m), \(r)) is not supported")
        let alpha = m + r - 1
        let candidates: [Double] = [0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, 1.0 / 3, -1.0 / 3]
        let points = Array(candidates.prefix(alpha - 1))
        (outputs, taps) = (m, r)

        /// Coefficients (ascending powers) of Π (x - p) over `roots`.
        func product(_ roots: [Double]) -> [Double] {
            var c: [Double] = [1]
            for p in roots {
                var next = [Double](repeating: 0, count: c.count + 1)
                for (i, value) in c.enumerated() {
                    next[i + 1] += value
                    next[i] -= p * value
                }
                c = next
            }
            return c
        }
        var at = [[Double]](repeating: [Double](repeating: 0, count: alpha), count: m)
        var g = [[Double]](repeating: [Double](repeating: 0, count: r), count: alpha)
        var bt = [[Double]](repeating: [Double](repeating: 0, count: alpha), count: alpha)
        for (j, p) in points.enumerated() {
            let others = points.enumerated().filter { $0.offset != j }.map(\.element)
            let denominator = others.reduce(1.0) { $0 * (p - $1) }
            for i in 0..<m { at[i][j] = pow(p, Double(i)) }
            for k in 0..<r { g[j][k] = pow(p, Double(k)) / denominator }
            for (c, value) in product(others).enumerated() { bt[j][c] = value }
        }
        at[m - 1][alpha - 1] = 1
        g[alpha - 1][r - 1] = 1
        bt[alpha - 1] = product(points)
        (outputTransform, weightTransform, inputTransform) = (at, g, bt)

        // Points p and -p (rows of Bᵀ, columns of Aᵀ) share sums: for Bᵀ, rows r± = u ± w with u and w each
        // about half as dense; for Aᵀ, the columns act on M_p + M_-p and M_p - M_-p.
        var pairs: [(Int, Int)] = []
        for (j, p) in points.enumerated() where p > 0 {
            if let k = points.firstIndex(of: -p) { pairs.append((j, k)) }
        }
        inputProgram = TransformProgram(rows: bt, pairedRows: pairs)
        outputProgram = TransformProgram(columns: at, pairedColumns: pairs)
    }

    public static func == (a: WinogradTile, b: WinogradTile) -> Bool { a.outputs == b.outputs && a.taps == b.taps }

    /// Float copies of the matrices, for the plain references.
    var at: [[Float]] { outputTransform.map { $0.map(Float.init) } }
    var bt: [[Float]] { inputTransform.map { $0.map(Float.init) } }
}

/// A matrix applied to a set of vectors (out_i = Σ_j a_ij in_j, elementwise over the vectors), as a list of
/// steps, each one fused loop that sets (or adds to) one vector from a few others. Slots number the inputs,
/// then the temporaries, then the outputs.
struct TransformProgram: Sendable {
    struct Term: Sendable { let slot: Int; let coefficient: Float }
    struct Step: Sendable { let target: Int; let terms: [Term] }
    let inputCount: Int, temporaryCount: Int, outputCount: Int
    let steps: [Step]

    /// out = matrix · in, with the rows in `pairedRows` computed as u ± w, u = (r1 + r2)/2, w = (r1 - r2)/2.
    init(rows matrix: [[Double]], pairedRows: [(Int, Int)]) {
        let (outputs, inputs) = (matrix.count, matrix[0].count)
        var steps: [Step] = []
        var temporaries = 0
        func terms(_ row: [Double]) -> [Term] {
            row.enumerated().filter { $0.element != 0 }.map { Term(slot: $0.offset, coefficient: Float($0.element)) }
        }
        let output = { (i: Int) in inputs + 2 * pairedRows.count + i }
        var done = Set<Int>()
        for (a, b) in pairedRows {
            let u = zip(matrix[a], matrix[b]).map { ($0 + $1) / 2 }, w = zip(matrix[a], matrix[b]).map { ($0 - $1) / 2 }
            let plain = terms(matrix[a]).count + terms(matrix[b]).count
            guard terms(u).count + terms(w).count + 2 < plain, !terms(u).isEmpty, !terms(w).isEmpty else { continue }
            let (tu, tw) = (inputs + temporaries, inputs + temporaries + 1)
            temporaries += 2
            steps.append(Step(target: tu, terms: terms(u)))
            steps.append(Step(target: tw, terms: terms(w)))
            steps.append(Step(target: output(a), terms: [Term(slot: tu, coefficient: 1), Term(slot: tw, coefficient: 1)]))
            steps.append(Step(target: output(b), terms: [Term(slot: tu, coefficient: 1), Term(slot: tw, coefficient: -1)]))
            done.formUnion([a, b])
        }
        for i in 0..<outputs where !done.contains(i) {
            steps.append(Step(target: output(i), terms: terms(matrix[i])))
        }
        // Outputs are numbered after the largest possible temporary count; renumber them after the real one.
        let shift = 2 * pairedRows.count - temporaries
        self.steps = steps.map { step in
            let fix = { (slot: Int) in slot >= inputs + 2 * pairedRows.count ? slot - shift : slot }
            return Step(target: fix(step.target), terms: step.terms.map { Term(slot: fix($0.slot), coefficient: $0.coefficient) })
        }
        (inputCount, temporaryCount, outputCount) = (inputs, temporaries, outputs)
    }

    /// out = matrix · in, with the columns in `pairedColumns` acting on the temporaries in_a ± in_b.
    init(columns matrix: [[Double]], pairedColumns: [(Int, Int)]) {
        let (outputs, inputs) = (matrix.count, matrix[0].count)
        var steps: [Step] = []
        var paired = Set<Int>()
        for (index, (a, b)) in pairedColumns.enumerated() {
            let (sum, difference) = (inputs + 2 * index, inputs + 2 * index + 1)
            steps.append(Step(target: sum, terms: [Term(slot: a, coefficient: 1), Term(slot: b, coefficient: 1)]))
            steps.append(Step(target: difference, terms: [Term(slot: a, coefficient: 1), Term(slot: b, coefficient: -1)]))
            paired.formUnion([a, b])
        }
        for i in 0..<outputs {
            var terms: [Term] = []
            for j in 0..<inputs where !paired.contains(j) && matrix[i][j] != 0 {
                terms.append(Term(slot: j, coefficient: Float(matrix[i][j])))
            }
            for (index, (a, b)) in pairedColumns.enumerated() {
                let (s, d) = ((matrix[i][a] + matrix[i][b]) / 2, (matrix[i][a] - matrix[i][b]) / 2)
                if s != 0 { terms.append(Term(slot: inputs + 2 * index, coefficient: Float(s))) }
                if d != 0 { terms.append(Term(slot: inputs + 2 * index + 1, coefficient: Float(d))) }
            }
            steps.append(Step(target: inputs + 2 * pairedColumns.count + i, terms: terms))
        }
        self.steps = steps
        (inputCount, temporaryCount, outputCount) = (inputs, 2 * pairedColumns.count, outputs)
    }

    var slotCount: Int { inputCount + temporaryCount + outputCount }

    /// Runs the program on vectors of `count` floats: `slots` holds the input pointers, then `temporaryCount`
    /// scratch vectors, then the output pointers. With `accumulate` the outputs are added to, not set.
    @inline(__always)
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>, count: Int, accumulate: Bool) {
        let firstOutput = inputCount + temporaryCount
        for step in steps {
            combine(into: slots[step.target], count: count, accumulate: accumulate && step.target >= firstOutput,
                    step.terms, slots)
        }
    }
}

/// target[i] (+)= Σ c_t · source_t[i] for i < count, four terms per fused loop.
///
/// Where the time goes: these loops are the transforms' whole cost; each is a contiguous, vectorised pass
/// over a block of tiles, so the few terms of a step are summed in registers with one store.
@inline(__always)
private func combine(into target: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool,
                     _ terms: [TransformProgram.Term], _ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
    var first = 0
    var adding = accumulate
    while first < terms.count {
        let n = min(4, terms.count - first)
        let a = UnsafePointer(slots[terms[first].slot]), ca = terms[first].coefficient
        // Every slot pointer addresses at least `count` floats (the callers' invariant).
        switch (n, adding) {
        case (1, false): for i in 0..<count { target[i] = ca * a[i] }
        case (1, true): for i in 0..<count { target[i] += ca * a[i] }
        case (2, _):
            let b = UnsafePointer(slots[terms[first + 1].slot]), cb = terms[first + 1].coefficient
            if adding { for i in 0..<count { target[i] += ca * a[i] + cb * b[i] } }
            else { for i in 0..<count { target[i] = ca * a[i] + cb * b[i] } }
        case (3, _):
            let b = UnsafePointer(slots[terms[first + 1].slot]), cb = terms[first + 1].coefficient
            let c = UnsafePointer(slots[terms[first + 2].slot]), cc = terms[first + 2].coefficient
            if adding { for i in 0..<count { target[i] += ca * a[i] + cb * b[i] + cc * c[i] } }
            else { for i in 0..<count { target[i] = ca * a[i] + cb * b[i] + cc * c[i] } }
        default:
            let b = UnsafePointer(slots[terms[first + 1].slot]), cb = terms[first + 1].coefficient
            let c = UnsafePointer(slots[terms[first + 2].slot]), cc = terms[first + 2].coefficient
            let d = UnsafePointer(slots[terms[first + 3].slot]), cd = terms[first + 3].coefficient
            if adding { for i in 0..<count { target[i] += (ca * a[i] + cb * b[i]) + (cc * c[i] + cd * d[i]) } }
            else { for i in 0..<count { target[i] = (ca * a[i] + cb * b[i]) + (cc * c[i] + cd * d[i]) } }
        }
        first += n
        adding = true
    }
}

extension WinogradTile {
    /// U_ξ = Σ_k G[ξ][k] W_k for tap-major 1-D weights `taps` [r, count] (count = Cout·Cin): [α, count].
    func transformWeights1D(_ taps: UnsafePointer<Float>, count: Int, into u: UnsafeMutablePointer<Float>) {
        let (alpha, r) = (inputs, self.taps)
        let g = weightTransform
        parallelFor(count, minimumPerThread: 4096) { range in
            // Double sums, rounded once: the weights' share of the error stays at one float rounding.
            var sums = [Double](repeating: 0, count: alpha)
            for i in range {
                for xi in 0..<alpha { sums[xi] = 0 }
                for k in 0..<r {
                    let w = Double(taps[k * count + i])
                    for xi in 0..<alpha { sums[xi] += g[xi][k] * w }
                }
                for xi in 0..<alpha { u[xi * count + i] = Float(sums[xi]) }
            }
        }
    }
}

/// Weights of a "same" convolution with a 3x3 spatial kernel (and kt taps in time) in Winograd's domain, as
/// the fast kernel multiplies them: U [α², Cout, kt·Cin], ξ = ξy·α + ξx, columns (dt, input channel).
public struct WinogradBoxKernel: Sendable {
    public let tile: WinogradTile
    public let outputs: Int, inputs: Int
    /// kt: taps along time (1 for a 2-D kernel).
    public let frameTaps: Int
    let weights: [Float]

    /// From tap-major weights [kt·9, Cout, Cin] (taps in (t, y, x) order), as `BoxKernel` holds them.
    public init(tile: WinogradTile, taps: Tensor, frameTaps kt: Int) {
        let (count, cout, cin) = taps.dims3
        precondition(tile.taps == 3 && count == kt * 9, "WinogradBoxKernel: taps \(taps.shape) for a 3x3 F(\(tile.outputs), 3)")
        (self.tile, outputs, inputs, frameTaps) = (tile, cout, cin, kt)
        let alpha = tile.inputs
        let g = tile.weightTransform.flatMap { $0 }                // [ξ, k], α x 3
        let columns = kt * cin
        weights = [Float](unsafeUninitializedCapacity: alpha * alpha * cout * columns) { u, initialized in
            taps.data.withUnsafeBufferPointer { w in
            g.withUnsafeBufferPointer { g in
                let (w, u, g) = (w.baseAddress!, u.baseAddress!, g.baseAddress!)
                // G g Gᵀ in two passes, along x (3 -> α per kernel row), then along y, in double and rounded once;
                // one output channel's row of Cin weights at a time, so every loop runs over contiguous channels.
                parallelFor(cout, minimumPerThread: 4) { rows in
                    let partial = UnsafeMutablePointer<Double>.allocate(capacity: 3 * alpha * cin)    // [dy, ξx, Cin]
                    defer { partial.deallocate() }
                    for o in rows {
                        for dt in 0..<kt {
                            for dy in 0..<3 {
                                let row = (0..<3).map { dx in w + ((dt * 3 + dy) * 3 + dx) * cout * cin + o * cin }
                                for xi in 0..<alpha {
                                    let (c0, c1, c2) = (g[xi * 3], g[xi * 3 + 1], g[xi * 3 + 2])
                                    let target = partial + (dy * alpha + xi) * cin
                                    for i in 0..<cin {
                                        target[i] = c0 * Double(row[0][i]) + c1 * Double(row[1][i]) + c2 * Double(row[2][i])
                                    }
                                }
                            }
                            for yi in 0..<alpha {
                                let (c0, c1, c2) = (g[yi * 3], g[yi * 3 + 1], g[yi * 3 + 2])
                                for xi in 0..<alpha {
                                    let (p0, p1, p2) = (partial + xi * cin, partial + (alpha + xi) * cin,
                                                        partial + (2 * alpha + xi) * cin)
                                    let target = u + ((yi * alpha + xi) * cout + o) * columns + dt * cin
                                    for i in 0..<cin { target[i] = Float(c0 * p0[i] + c1 * p1[i] + c2 * p2[i]) }
                                }
                            }
                        }
                    }
                }
            }}
            initialized = alpha * alpha * cout * columns
        }
    }
}

// MARK: - Plain references

/// Winograd's 2-D "same" convolution, stride 1, of frames-major `x` [T, Cin, H, W] with `weight`
/// [Cout, Cin, kt, 3, 3] (or [Cout, Cin, 3, 3] with kt = 1) and time padding kt/2, tile by tile in plain loops
/// straight from the matrices: the reference for `accumulateWinogradBoxConvolution`.
public func winogradBoxConvolutionReference(_ x: Tensor, weight: Tensor, bias: Tensor?, tile: WinogradTile) -> Tensor {
    let (t, cin, h, w) = x.dims4
    let kt = weight.rank == 5 ? weight.shape[2] : 1
    let cout = weight.shape[0]
    precondition(weight.shape[1] == cin && weight.shape.suffix(2) == [3, 3] && tile.taps == 3,
                 "winogradBoxConvolutionReference: weight \(weight.shape) for input \(x.shape)")
    let (m, alpha, g) = (tile.outputs, tile.inputs, tile.weightTransform)
    let (at, bt) = (tile.at, tile.bt)
    var out = Tensor(shape: [t, cout, h, w])
    for f in 0..<t { for ty in stride(from: 0, to: h, by: m) { for tx in stride(from: 0, to: w, by: m) {
        for o in 0..<cout {
            var mSum = [Float](repeating: 0, count: alpha * alpha)
            for dt in 0..<kt {
                let fi = f + dt - kt / 2
                guard fi >= 0, fi < t else { continue }
                for c in 0..<cin {
                    // d: the α x α input patch, zero outside the frame; V = Bᵀ d B.
                    var d = [Float](repeating: 0, count: alpha * alpha)
                    for a in 0..<alpha { for b in 0..<alpha {
                        let (iy, ix) = (ty - 1 + a, tx - 1 + b)
                        if iy >= 0, iy < h, ix >= 0, ix < w { d[a * alpha + b] = x.data[((fi * cin + c) * h + iy) * w + ix] }
                    }}
                    var v = [Float](repeating: 0, count: alpha * alpha)
                    for a in 0..<alpha { for b in 0..<alpha {
                        var s: Float = 0
                        for p in 0..<alpha { for q in 0..<alpha { s += bt[a][p] * d[p * alpha + q] * bt[b][q] } }
                        v[a * alpha + b] = s
                    }}
                    // U = G g Gᵀ for this (o, c, dt).
                    for a in 0..<alpha { for b in 0..<alpha {
                        var u = 0.0
                        for p in 0..<3 { for q in 0..<3 {
                            let index = kt == 1 ? ((o * cin + c) * 3 + p) * 3 + q : (((o * cin + c) * kt + dt) * 3 + p) * 3 + q
                            u += g[a][p] * Double(weight.data[index]) * g[b][q]
                        }}
                        mSum[a * alpha + b] += Float(u) * v[a * alpha + b]
                    }}
                }
            }
            // Y = Aᵀ M A, kept where it lies in the frame.
            for i in 0..<m { for j in 0..<m where ty + i < h && tx + j < w {
                var s: Float = bias?.data[o] ?? 0
                for a in 0..<alpha { for b in 0..<alpha { s += at[i][a] * mSum[a * alpha + b] * at[j][b] } }
                out.data[((f * cout + o) * h + ty + i) * w + tx + j] = s
            }}
        }
    }}}
    return out
}

/// Winograd's 1-D "same" convolution along width, height or time (kernel (1,1,r), (1,r,1) or (r,1,1), r odd)
/// of frames-major `x` [T, Cin, H, W] with `weight` [Cout, Cin, kt, kh, kw], tile by tile in plain loops: the
/// reference for `accumulateWinogradTapConvolution`.
public func winogradTapConvolutionReference(_ x: Tensor, weight: Tensor, bias: Tensor?, axis: TapAxis,
                                            tile: WinogradTile) -> Tensor {
    let (t, cin, h, w) = x.dims4
    let cout = weight.shape[0]
    let r = tile.taps
    let kernel = axis == .width ? [1, 1, r] : axis == .height ? [1, r, 1] : [r, 1, 1]
    precondition(weight.rank == 5 && weight.shape[1] == cin && Array(weight.shape[2...4]) == kernel,
                 "winogradTapConvolutionReference: weight \(weight.shape) along \(axis) for \(x.shape)")
    let (m, alpha, g) = (tile.outputs, tile.inputs, tile.weightTransform)
    let (at, bt) = (tile.at, tile.bt)
    // Lines along the axis, each a start index and a step: (frame, row) along width, (frame, column) along
    // height, pixel along time; position i of a line in channel c of frame-major [T, C, H, W] data is
    // lineStart(c) + i·step.
    let (extent, step) = axis == .width ? (w, 1) : axis == .height ? (h, w) : (t, 0)
    let lines = axis == .time ? h * w : t * (axis == .width ? h : w)
    func start(_ line: Int, channel c: Int, channels: Int) -> Int {
        switch axis {
        case .width: return ((line / h * channels + c) * h + line % h) * w
        case .height: return (line / w * channels + c) * h * w + line % w
        case .time: return c * h * w + line
        }
    }
    func index(_ line: Int, channel c: Int, channels: Int, position i: Int) -> Int {
        axis == .time ? start(line, channel: c, channels: channels) + i * channels * h * w
            : start(line, channel: c, channels: channels) + i * step
    }
    var out = Tensor(shape: [t, cout, h, w])
    for line in 0..<lines {
        for first in stride(from: 0, to: extent, by: m) { for o in 0..<cout {
            var mSum = [Float](repeating: 0, count: alpha)
            for c in 0..<cin {
                var v = [Float](repeating: 0, count: alpha)
                for a in 0..<alpha {
                    for p in 0..<alpha {
                        let position = first - r / 2 + p
                        if position >= 0, position < extent {
                            v[a] += bt[a][p] * x.data[index(line, channel: c, channels: cin, position: position)]
                        }
                    }
                }
                for a in 0..<alpha {
                    var u = 0.0
                    for k in 0..<r { u += g[a][k] * Double(weight.data[(o * cin + c) * r + k]) }
                    mSum[a] += Float(u) * v[a]
                }
            }
            for i in 0..<m where first + i < extent {
                var s: Float = bias?.data[o] ?? 0
                for a in 0..<alpha { s += at[i][a] * mSum[a] }
                out.data[index(line, channel: o, channels: cout, position: first + i)] = s
            }
        }}
    }
    return out
}
