import Glibc
import ICProtocol
import VeneerPluginKit

/// One reading of the host's wall clock paired with the partition reference time at the same
/// instant: what a time-sync message carries.
struct TimePoint: Equatable, Sendable {
    /// Host UTC as Windows FILETIME (100 ns since 1601).
    var fileTime: UInt64
    /// The partition reference counter (100 ns), from the core's own clock.
    var referenceTime: UInt64

    /// Reads CLOCK_REALTIME between two reads of the reference counter and pairs it with their
    /// midpoint, so the pairing error is at most half the time the three reads took. Nil when the
    /// host has no reference time (older than ABI 1.5, or not an enlightened VM), or the wall
    /// clock is before 1970.
    static func now(_ host: HostServices) -> TimePoint? {
        guard let before = host.referenceTime() else { return nil }
        var ts = timespec()
        guard clock_gettime(CLOCK_REALTIME, &ts) == 0, ts.tv_sec >= 0 else { return nil }
        guard let after = host.referenceTime() else { return nil }
        // A lower-bound clock may step back by a tick between reads: never pair with less than `before`.
        let reference = after >= before ? before + (after - before) / 2 : before
        let unixNanoseconds = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        return TimePoint(fileTime: FileTime.fromUnix(nanoseconds: unixNanoseconds), referenceTime: reference)
    }
}
