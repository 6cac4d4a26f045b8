import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// What the partition offers that depends on the host.
public struct HyperVFeatures: Equatable, Sendable {
    /// Offer AccessTscInvariantControls (CPUID 0x40000003 EAX bit 15) and its MSR 0x40000118.
    /// Only when the host's TSC really is invariant: a guest given this privilege (Linux) marks its
    /// TSC reliable and prefers it over the reference TSC page as its clocksource.
    public var invariantTSC: Bool

    public init(invariantTSC: Bool = false) { self.invariantTSC = invariantTSC }

    /// The host's view: CPUID 0x80000007 EDX bit 8 (invariant TSC) on the host CPU, and the host
    /// kernel still using the TSC as its clocksource (it switches away when its watchdog finds the
    /// TSC unstable; an unreadable sysfs counts as "not known to be stable").
    public static func host() -> HyperVFeatures {
        var maxExtended: [UInt32] = [0, 0, 0, 0]
        ckvm_host_cpuid(0x8000_0000, &maxExtended)
        var power: [UInt32] = [0, 0, 0, 0]
        if maxExtended[0] >= 0x8000_0007 { ckvm_host_cpuid(0x8000_0007, &power) }
        let cpuInvariant = power[3] & (1 << 8) != 0
        let clocksource = firstLine(of: "/sys/devices/system/clocksource/clocksource0/current_clocksource")
        return HyperVFeatures(invariantTSC: cpuInvariant && clocksource == "tsc")
    }

    /// A short sysfs attribute (sysfs reports a size of 4096 whatever the text is).
    private static func firstLine(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 64) }
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).prefix { $0 != 0x0A }, as: UTF8.self)
    }
}
