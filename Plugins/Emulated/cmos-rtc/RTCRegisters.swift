/// Register indices and bits of the MC146818A, with the PC's century byte (IBM convention).
enum RTCRegister {
    static let seconds = 0x00, secondsAlarm = 0x01, minutes = 0x02, minutesAlarm = 0x03
    static let hours = 0x04, hoursAlarm = 0x05, weekday = 0x06, dayOfMonth = 0x07, month = 0x08, year = 0x09
    static let a = 0x0A, b = 0x0B, c = 0x0C, d = 0x0D
    static let century = 0x32
    static let count = 128

    /// Registers the update cycle owns: computed from the running clock, stored only while it is halted.
    static func isClock(_ index: Int) -> Bool {
        switch index {
        case seconds, minutes, hours, weekday, dayOfMonth, month, year, century: true
        default: false
        }
    }

    /// Battery-backed user bytes: what the `nvram` file keeps.
    static func isNVRAM(_ index: Int) -> Bool { index >= 0x0E && index < count && index != century }
}

enum RegisterA {
    static let updateInProgress: UInt8 = 0x80
    static let divider: UInt8 = 0x70
    static let rate: UInt8 = 0x0F
    static let writable: UInt8 = 0x7F
    /// 32.768 kHz time base, 1024 Hz periodic rate: what PC firmware programs.
    static let powerOn: UInt8 = 0x26
}

enum RegisterB {
    static let set: UInt8 = 0x80
    static let periodicEnable: UInt8 = 0x40
    static let alarmEnable: UInt8 = 0x20
    static let updateEndedEnable: UInt8 = 0x10
    static let squareWaveEnable: UInt8 = 0x08
    static let binary: UInt8 = 0x04
    static let twentyFourHour: UInt8 = 0x02
    static let daylightSaving: UInt8 = 0x01
    static let interruptEnables: UInt8 = 0x70
    /// 24-hour BCD, nothing enabled.
    static let powerOn: UInt8 = 0x02
}

enum RegisterC {
    static let interruptRequest: UInt8 = 0x80
    static let periodic: UInt8 = 0x40
    static let alarm: UInt8 = 0x20
    static let updateEnded: UInt8 = 0x10
    /// PF, AF and UF line up with PIE, AIE and UIE in register B.
    static let flags: UInt8 = 0x70
}

enum RegisterD {
    /// Valid RAM and time: the battery is always good.
    static let value: UInt8 = 0x80
}

/// How register B says clock bytes are encoded: BCD or binary, 24-hour or 12-hour with bit 7 = PM.
struct RegisterFormat: Equatable {
    var binary: Bool
    var twentyFourHour: Bool

    init(registerB: UInt8) {
        binary = registerB & RegisterB.binary != 0
        twentyFourHour = registerB & RegisterB.twentyFourHour != 0
    }

    /// `value` in 0...99.
    func encode(_ value: Int64) -> UInt8 {
        binary ? UInt8(truncatingIfNeeded: value) : UInt8(truncatingIfNeeded: (value / 10) << 4 | value % 10)
    }

    /// Non-decimal BCD nibbles count at face value: undefined on the chip, bounded here.
    func decode(_ byte: UInt8) -> Int64 {
        binary ? Int64(byte) : Int64(byte >> 4) * 10 + Int64(byte & 0x0F)
    }

    /// `hour` in 0...23.
    func encodeHour(_ hour: Int64) -> UInt8 {
        guard !twentyFourHour else { return encode(hour) }
        let twelve = hour % 12 == 0 ? 12 : hour % 12
        return encode(twelve) | (hour >= 12 ? 0x80 : 0)
    }

    func decodeHour(_ byte: UInt8) -> Int64 {
        let value = decode(byte & 0x7F)
        guard !twentyFourHour else { return value }
        return value % 12 + (byte & 0x80 != 0 ? 12 : 0)
    }
}

/// The eight clock registers (seconds, minutes, hours, weekday, day, month, year, century).
struct ClockRegisters: Equatable {
    var second: UInt8 = 0, minute: UInt8 = 0, hour: UInt8 = 0, weekday: UInt8 = 0
    var day: UInt8 = 0, month: UInt8 = 0, year: UInt8 = 0, century: UInt8 = 0

    init() {}

    /// The registers showing `time`, whose weekday register runs `weekdayOffset` days ahead of the
    /// calendar's (the guest may set any weekday).
    init(time: Int64, weekdayOffset: Int64, format: RegisterFormat) {
        let t = floorModulo(time, CivilTime.cycleSeconds)
        let days = t / CivilTime.secondsPerDay, secondOfDay = t % CivilTime.secondsPerDay
        let date = CivilTime.date(days: days)
        second = format.encode(secondOfDay % 60)
        minute = format.encode(secondOfDay / 60 % 60)
        hour = format.encodeHour(secondOfDay / 3600)
        weekday = format.encode(floorModulo(CivilTime.weekday(days: days) + weekdayOffset, 7) + 1)
        day = format.encode(date.day)
        month = format.encode(date.month)
        year = format.encode(date.year % 100)
        century = format.encode(date.year / 100)
    }

    subscript(index: Int) -> UInt8 {
        get {
            switch index {
            case RTCRegister.seconds: second
            case RTCRegister.minutes: minute
            case RTCRegister.hours: hour
            case RTCRegister.weekday: weekday
            case RTCRegister.dayOfMonth: day
            case RTCRegister.month: month
            case RTCRegister.year: year
            default: century
            }
        }
        set {
            switch index {
            case RTCRegister.seconds: second = newValue
            case RTCRegister.minutes: minute = newValue
            case RTCRegister.hours: hour = newValue
            case RTCRegister.weekday: weekday = newValue
            case RTCRegister.dayOfMonth: day = newValue
            case RTCRegister.month: month = newValue
            case RTCRegister.year: year = newValue
            default: century = newValue
            }
        }
    }

    /// The time these registers show. Out-of-range values carry over (seconds 75 is a minute and
    /// 15 seconds), as QEMU does; the weekday register becomes an offset from the calendar's.
    func time(format: RegisterFormat) -> (seconds: Int64, weekdayOffset: Int64) {
        let seconds = CivilTime.seconds(
            year: format.decode(century) * 100 + format.decode(year), month: format.decode(month),
            day: format.decode(day), hour: format.decodeHour(hour), minute: format.decode(minute),
            second: format.decode(second))
        let calendarWeekday = CivilTime.weekday(days: seconds / CivilTime.secondsPerDay)
        return (seconds, floorModulo(format.decode(weekday) - 1 - calendarWeekday, 7))
    }
}
