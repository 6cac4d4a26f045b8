/// When the alarm registers match: each of hours, minutes and seconds is a "don't care" code
/// (0xC0-0xFF), a value, or a byte no time can show (then the alarm never fires).
struct AlarmSchedule {
    enum Field: Equatable {
        case any
        case value(Int64)
        case never

        func matches(_ v: Int64) -> Bool {
            switch self {
            case .any: true
            case .value(let x): x == v
            case .never: false
            }
        }

        /// The smallest matching value >= `low` below `limit`.
        func first(from low: Int64, below limit: Int64) -> Int64? {
            switch self {
            case .any: low < limit ? low : nil
            case .value(let x): x >= low ? x : nil
            case .never: nil
            }
        }
    }

    let hour: Field, minute: Field, second: Field

    init(hours: UInt8, minutes: UInt8, seconds: UInt8, format: RegisterFormat) {
        func field(_ byte: UInt8, limit: Int64, decode: (UInt8) -> Int64, encode: (Int64) -> UInt8) -> Field {
            guard byte < 0xC0 else { return .any }
            let v = decode(byte)
            return (0..<limit).contains(v) && encode(v) == byte ? .value(v) : .never
        }
        hour = field(hours, limit: 24, decode: format.decodeHour, encode: format.encodeHour)
        minute = field(minutes, limit: 60, decode: format.decode, encode: format.encode)
        second = field(seconds, limit: 60, decode: format.decode, encode: format.encode)
    }

    /// The first time after `time` (absolute seconds, not wrapped) whose time of day matches.
    func next(after time: Int64) -> Int64? {
        let secondOfDay = floorModulo(time, CivilTime.secondsPerDay)
        let midnight = time - secondOfDay
        let h = secondOfDay / 3600, m = secondOfDay / 60 % 60, s = secondOfDay % 60
        func at(_ h: Int64, _ m: Int64, _ s: Int64) -> Int64 { h * 3600 + m * 60 + s }
        if hour.matches(h), minute.matches(m), let s2 = second.first(from: s + 1, below: 60) {
            return midnight + at(h, m, s2)
        }
        if hour.matches(h), let m2 = minute.first(from: m + 1, below: 60), let s2 = second.first(from: 0, below: 60) {
            return midnight + at(h, m2, s2)
        }
        guard let m0 = minute.first(from: 0, below: 60), let s0 = second.first(from: 0, below: 60) else { return nil }
        if let h2 = hour.first(from: h + 1, below: 24) { return midnight + at(h2, m0, s0) }
        guard let h0 = hour.first(from: 0, below: 24) else { return nil }
        return midnight + CivilTime.secondsPerDay + at(h0, m0, s0)
    }
}
