import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

extension CMOSRTC {
    static let definition = PluginDefinition(
        name: "cmos-rtc",
        version: "1.0.0",
        summary: "MC146818A real-time clock and CMOS RAM at ports 0x70-0x71 on IRQ 8, optionally kept in a file",
        stateVersion: stateVersion,
        parameters: [
            ParameterSpec("irq", .int(min: 0, max: 23), default: "8", doc: "interrupt line (IRQ 8 on a PC)"),
            ParameterSpec("start", .string, default: "host",
                          doc: "time at creation: host (the host's UTC wall clock) or a UTC time like 2020-02-29T23:59:58"),
            ParameterSpec("nvram", .path(words: []), default: "",
                          doc: "file keeping the CMOS RAM across runs (128 bytes, loaded if it exists; relative to the config file); empty: none"),
        ]
    ) { host, params, _ throws(PluginError) in
        let irq = params.int("irq")
        guard (0...23).contains(irq) else { throw PluginError("irq \(irq) is outside 0...23") }
        let text = params.string("start")
        let start: StartTime
        if text == "host" {
            start = .hostClock
        } else if let seconds = CivilTime.parseISO8601(text) {
            start = .fixed(seconds: seconds)
        } else {
            throw PluginError("start '\(text)': expected host or a UTC time such as 2020-02-29T23:59:58")
        }
        let path = params.string("nvram")
        let file = path.isEmpty ? nil : try NVRAMFile(path: path)
        return try CMOSRTC(host: host, irq: UInt32(irq), start: start, nvram: file)
    }
}

/// The host's UTC wall clock as RTC time, and how far into its second it is.
func hostWallClock() -> (seconds: Int64, nanoseconds: Int64) {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let seconds = Int64(now.tv_sec) + CivilTime.unixEpochDays * CivilTime.secondsPerDay
    return (floorModulo(seconds, CivilTime.cycleSeconds), Int64(now.tv_nsec))
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: CMOSRTC.definition) }
