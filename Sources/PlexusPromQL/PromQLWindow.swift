import PlexusModel

extension PromQL {
    /// The samples of one series in one range window, `[start, end]` (microseconds), and
    /// the range functions over them, computed as Prometheus 2.x computes them.
    struct Window {
        var timestamps: ArraySlice<Int64>
        var values: ArraySlice<Double>
        var start: Int64
        var end: Int64
        var range: Int64
        /// The evaluation time (the window ends here less the offset).
        var at: Int64

        func apply(_ f: Function, parameter: Double?) -> Double? {
            switch f {
            case .rate: extrapolatedRate(counter: true, rate: true)
            case .increase: extrapolatedRate(counter: true, rate: false)
            case .delta: extrapolatedRate(counter: false, rate: false)
            case .irate: instantDelta(rate: true)
            case .idelta: instantDelta(rate: false)
            case .deriv: values.count < 2 ? nil : regression(origin: timestamps.first!).slope
            case .predictLinear: values.count < 2 ? nil : predicted(seconds: parameter ?? .nan)
            case .changes: Double(zip(values, values.dropFirst()).filter { a, b in a != b && !(a.isNaN && b.isNaN) }.count)
            case .resets: Double(zip(values, values.dropFirst()).filter { a, b in b < a }.count)
            case .avgOverTime: runningMean()
            case .minOverTime: values.dropFirst().reduce(values.first!) { m, x in m > x || m.isNaN ? x : m }
            case .maxOverTime: values.dropFirst().reduce(values.first!) { m, x in m < x || m.isNaN ? x : m }
            case .sumOverTime: compensatedSum()
            case .countOverTime: Double(values.count)
            case .lastOverTime: values.last
            case .presentOverTime: 1
            case .stddevOverTime, .stdvarOverTime: variance().map { f == .stdvarOverTime ? $0 : $0.squareRoot() }
            case .quantileOverTime: PromQL.quantile(parameter ?? .nan, Array(values))
            default: nil
            }
        }

        /// `predict_linear`: Prometheus regresses around the evaluation time, then goes
        /// `seconds` further along the line.
        func predicted(seconds: Double) -> Double {
            let line = regression(origin: at)
            return line.slope * seconds + line.intercept
        }

        /// `avg_over_time` as Prometheus 2.x: a compensated running mean (finite where a plain
        /// sum overflows) that, once infinite, stays so through finite values and
        /// same-signed infinities.
        func runningMean() -> Double {
            var mean = Kahan()
            var count = 0.0
            for v in values {
                count += 1
                if mean.sum.isInfinite {
                    if v.isInfinite && (mean.sum > 0) == (v > 0) { continue }
                    if !v.isInfinite && !v.isNaN { continue }
                }
                mean.add(v / count - mean.sum / count)
            }
            return mean.sum.isInfinite ? mean.sum : mean.value
        }

        /// `sum_over_time` as Prometheus 2.x: compensated (Kahan–Neumaier) summation.
        func compensatedSum() -> Double {
            var sum = Kahan()
            for v in values { sum.add(v) }
            return sum.sum.isInfinite ? sum.sum : sum.value
        }

        /// Seconds between two timestamps.
        static func seconds(_ us: Int64) -> Double { Double(us) / 1_000_000 }

        /// `rate`, `increase` and `delta`: the change over the window, corrected for counter
        /// resets, extrapolated towards the window's ends when the samples reach close to
        /// them (no further than the zero of a counter), per second for `rate`.
        func extrapolatedRate(counter: Bool, rate: Bool) -> Double? {
            guard values.count >= 2, let first = values.first, let last = values.last else { return nil }
            var result = last - first
            if counter {
                var previous = 0.0
                for v in values {
                    if v < previous { result += previous }
                    previous = v
                }
            }
            var toStart = Self.seconds(timestamps.first! - start)
            let toEnd = Self.seconds(end - timestamps.last!)
            let sampled = Self.seconds(timestamps.last! - timestamps.first!)
            let average = sampled / Double(values.count - 1)
            if counter && result > 0 && first >= 0 {
                let toZero = sampled * (first / result)
                if toZero < toStart { toStart = toZero }
            }
            let threshold = average * 1.1
            var interval = sampled
            interval += toStart < threshold ? toStart : average / 2
            interval += toEnd < threshold ? toEnd : average / 2
            result *= interval / sampled
            if rate { result /= Self.seconds(range) }
            return result
        }

        /// `irate` and `idelta`: the last two samples.
        func instantDelta(rate: Bool) -> Double? {
            guard values.count >= 2 else { return nil }
            let last = values[values.endIndex - 1]
            let previous = values[values.endIndex - 2]
            var result = rate && last < previous ? last : last - previous
            let interval = timestamps[timestamps.endIndex - 1] - timestamps[timestamps.endIndex - 2]
            guard interval != 0 else { return nil }
            if rate { result /= Self.seconds(interval) }
            return result
        }

        /// The least-squares line through the samples (slope per second, intercept at
        /// `origin`), with Prometheus' compensated sums and its answer for a constant series.
        func regression(origin: Int64) -> (slope: Double, intercept: Double) {
            let initial = values.first!
            if values.allSatisfy({ $0 == initial }) { return initial.isInfinite ? (.nan, .nan) : (0, initial) }
            var n = 0.0
            var sumX = Kahan()
            var sumY = Kahan()
            var sumXY = Kahan()
            var sumX2 = Kahan()
            for (t, v) in zip(timestamps, values) {
                n += 1
                let x = Self.seconds(t - origin)
                sumX.add(x)
                sumY.add(v)
                sumXY.add(x * v)
                sumX2.add(x * x)
            }
            let (sx, sy, sxy, sx2) = (sumX.value, sumY.value, sumXY.value, sumX2.value)
            let covariance = sxy - sx * sy / n
            let variance = sx2 - sx * sx / n
            let slope = covariance / variance
            return (slope, sy / n - slope * sx / n)
        }

        /// Welford's variance with compensated sums, as `stdvar_over_time`.
        func variance() -> Double? {
            var count = 0.0
            var mean = Kahan()
            var aux = Kahan()
            for v in values {
                count += 1
                let delta = v - mean.value
                mean.add(delta / count)
                aux.add(delta * (v - mean.value))
            }
            return aux.value / count
        }
    }

    /// Kahan–Neumaier compensated summation (Prometheus' kahanSumInc).
    struct Kahan {
        var sum = 0.0
        var compensation = 0.0

        mutating func add(_ x: Double) {
            let t = sum + x
            if Swift.abs(sum) >= Swift.abs(x) {
                compensation += (sum - t) + x
            } else {
                compensation += (x - t) + sum
            }
            sum = t
        }

        var value: Double { sum + compensation }
    }
}
