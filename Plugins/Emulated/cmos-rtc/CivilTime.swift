/// Calendar arithmetic for the RTC: a time is whole seconds since 0000-01-01T00:00:00 in the
/// proleptic Gregorian calendar, kept within one 10000-year cycle so that every time has a
/// two-digit century and year. 10000 years are exactly 25 Gregorian 400-year cycles, so wrapping
/// keeps weekdays and leap years right.
enum CivilTime {
    static let secondsPerDay: Int64 = 86_400
    static let daysPerCycle: Int64 = 25 * 146_097
    static let cycleSeconds: Int64 = daysPerCycle * secondsPerDay
    /// 1970-01-01 counted from 0000-01-01.
    static let unixEpochDays: Int64 = 719_528

    /// Days since 0000-01-01 of year-month-day (month 1...12; any day, linearly, so day 0 is the
    /// last day of the month before). H. Hinnant's days_from_civil.
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468 + unixEpochDays
    }

    /// The date of a day counted from 0000-01-01 (civil_from_days).
    static func date(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days - unixEpochDays + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// 0 = Sunday. 0000-01-01 was a Saturday.
    static func weekday(days: Int64) -> Int64 { floorModulo(days + 6, 7) }

    /// Any year, month, day and time of day, out-of-range fields carried over as mktime does,
    /// wrapped into the cycle.
    static func seconds(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) -> Int64 {
        let y = year + floorDivide(month - 1, 12)
        let m = floorModulo(month - 1, 12) + 1
        let d = days(year: y, month: m, day: 1) + day - 1
        return floorModulo(d * secondsPerDay + hour * 3600 + minute * 60 + second, cycleSeconds)
    }

    static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS`, optionally ending in `Z`: a valid UTC time in years 0000-9999.
    static func parseISO8601(_ text: String) -> Int64? {
        var s = Array(text.utf8)
        if s.last == UInt8(ascii: "Z") { s.removeLast() }
        guard s.count == 19, s[4] == UInt8(ascii: "-"), s[7] == UInt8(ascii: "-"), s[10] == UInt8(ascii: "T"),
              s[13] == UInt8(ascii: ":"), s[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for c in s[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) else { return nil }
                value = value * 10 + Int64(c - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day),
              hour < 24, minute < 60, second < 60
        else { return nil }
        return seconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }
}

func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

func floorModulo(_ a: Int64, _ b: Int64) -> Int64 { a - floorDivide(a, b) * b }
