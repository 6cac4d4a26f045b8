import Foundation
import Testing
import VeneerHost

/// `kill -USR1` on a running `veneer run` logs every vCPU's registers and leaves the VM running:
/// the way to see where a guest is stuck.
@Suite(.serialized, .enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm not available"))
struct StateReportTests {
    @Test func sigusr1ReportsRegistersWithoutStopping() throws {
        // A real-mode guest that spins at 0x7c00 (`jmp $`) on two vCPUs.
        let config = try VeneerProcess.config("""
            name = "spin"
            memory = "16M"
            vcpus = 2
            [boot]
            format = "flat"
            image = "spin.bin"
            mode = "real"
            """)
        let directory = (config as NSString).deletingLastPathComponent
        try Data([0xEB, 0xFE]).write(to: URL(fileURLWithPath: directory + "/spin.bin"))
        let log = directory + "/stderr.txt"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: VeneerProcess.executable)
        process.arguments = ["run", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

        func reports() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                .filter { $0.contains("state on request (SIGUSR1) at RIP ") }
        }
        // The signal handler is in place once the VM runs: ask until both vCPUs answer.
        let deadline = Date().addingTimeInterval(20)
        while reports().count < 2 && Date() < deadline && process.isRunning {
            kill(process.processIdentifier, SIGUSR1)
            usleep(300_000)
        }
        let lines = reports()
        #expect(lines.contains { $0.contains("[vcpu0]") && $0.contains("RIP 0x0000000000007c00") }, "\(lines)")
        #expect(lines.contains { $0.contains("[vcpu1]") }, "\(lines)")
        #expect(process.isRunning, "SIGUSR1 must not stop the VM")

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGTERM)
    }
}
