import Foundation
import Testing
@testable import VeneerManagement
import WorkerControlProtocol

/// The supervisor's rules without workers: transitions, backoff, exit outcomes, line framing,
/// state-directory files.
struct SupervisorRulesTests {
    @Test("the transitions table: each operation from exactly its Hyper-V states")
    func transitions() throws {
        #expect(VMOperation.start.allowedFrom == [.off, .failed])
        #expect(VMOperation.stop.allowedFrom == [.starting, .running, .paused])
        #expect(VMOperation.shutdown.allowedFrom == [.running])
        #expect(VMOperation.pause.allowedFrom == [.running])
        #expect(VMOperation.resume.allowedFrom == [.paused])
        #expect(VMOperation.delete.allowedFrom == [.off, .failed])
        for operation in VMOperation.allCases {
            // Saving/Saved belong to save/restore (another issue): nothing here starts from them.
            #expect(!operation.allowedFrom.contains(.saving))
            #expect(!operation.allowedFrom.contains(.saved))
            for state in VMState.allCases where !operation.allowedFrom.contains(state) {
                #expect(throws: ManagementError.invalidTransition(name: "v", operation: operation.rawValue, state: state)) {
                    try operation.check("v", in: state)
                }
            }
        }
    }

    @Test("backoff doubles from the initial delay up to the maximum and resets after 60 s of running")
    func backoff() {
        let policy = RestartPolicy(mode: .always, initialBackoffMs: 100, maxBackoffMs: 1000)
        var backoff = RestartBackoff()
        #expect((0..<6).map { _ in backoff.nextDelayMs(policy) } == [100, 200, 400, 800, 1000, 1000])
        backoff.ended(afterRunningMs: 59_999)
        #expect(backoff.nextDelayMs(policy) == 1000)
        backoff.ended(afterRunningMs: 60_000)
        #expect(backoff.nextDelayMs(policy) == 100)
        var huge = RestartBackoff()
        let big = RestartPolicy(mode: .always, initialBackoffMs: Int.max / 2, maxBackoffMs: Int.max)
        for _ in 0..<40 { #expect(huge.nextDelayMs(big) > 0) }

        #expect(!RestartBackoff.shouldRestart(RestartPolicy(mode: .never), failed: true))
        #expect(RestartBackoff.shouldRestart(RestartPolicy(mode: .onFailure), failed: true))
        #expect(!RestartBackoff.shouldRestart(RestartPolicy(mode: .onFailure), failed: false))
        #expect(RestartBackoff.shouldRestart(RestartPolicy(mode: .always), failed: false))
    }

    @Test("exit records decide Off or Failed; a worker that left none is Failed with its wait status")
    func outcomes() {
        func record(_ reason: String, _ status: Int32) -> WorkerExitRecord {
            WorkerExitRecord(reason: reason, status: status, message: "m", timeMs: 0)
        }
        #expect(VMSupervisor.outcome(record: record("powerOff", 0), termination: .exited(0), requested: false).state == .off)
        #expect(VMSupervisor.outcome(record: record("stopped", 0), termination: .exited(0), requested: false).state == .off)
        #expect(VMSupervisor.outcome(record: record("guestExit", 0), termination: .exited(0), requested: false).state == .off)
        #expect(VMSupervisor.outcome(record: record("guestExit", 3), termination: .exited(3), requested: false).state == .failed)
        #expect(VMSupervisor.outcome(record: record("fault", 70), termination: .exited(70), requested: false).state == .failed)
        #expect(VMSupervisor.outcome(record: record("fault", 70), termination: .exited(70), requested: true).state == .off)
        let killed = VMSupervisor.outcome(record: nil, termination: .signaled(9), requested: false)
        #expect(killed.state == .failed)
        #expect(killed.record.status == 137)
        #expect(killed.record.message.contains("SIGKILL"))
        #expect(ProcessTermination(waitStatus: 3 << 8) == .exited(3))
        #expect(ProcessTermination(waitStatus: 9) == .signaled(9))
    }

    @Test("line framing: whole lines, the raw remainder, and a bound on a line without newline")
    func lines() throws {
        var buffer = LineBuffer(limit: 8)
        buffer.append(Array("ab\ncd".utf8))
        #expect(try buffer.nextLine() == Array("ab".utf8))
        #expect(try buffer.nextLine() == nil)
        buffer.append(Array("e\nraw".utf8))
        #expect(try buffer.nextLine() == Array("cde".utf8))
        #expect(buffer.takeRemainder() == Array("raw".utf8))
        buffer.append([UInt8](repeating: 0x41, count: 9))
        #expect(throws: LineBuffer.TooLong.self) { _ = try buffer.nextLine() }
    }

    @Test("state directory: 0700 directories, 0600 atomic files, names validated before any path")
    func stateDirectory() throws {
        let root = "/tmp/vmt-" + String(UUID().uuidString.prefix(8))
        defer { try? FileManager.default.removeItem(atPath: root) }
        let state = try StateDirectory(root: root)
        let mode = { (path: String) -> Int in
            ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
        }
        #expect(mode(root) == 0o700)
        #expect(mode(state.vmsPath) == 0o700)
        let file = root + "/f.json"
        try StateDirectory.writeAtomically(file, Array("one".utf8))
        try StateDirectory.writeAtomically(file, Array("two".utf8))
        #expect(try StateDirectory.read(file) == Array("two".utf8))
        #expect(mode(file) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: file + ".tmp"))
        #expect(try StateDirectory.read(root + "/absent") == nil)
        for bad in ["", ".", "..", "../x", "a/b", "-a", String(repeating: "a", count: 65)] {
            #expect(throws: ManagementError.self) { _ = try state.vmPath(bad) }
        }
        #expect(throws: ManagementError.self) { _ = try StateDirectory(root: "relative/dir") }
        try StateDirectory.makeDirectory(state.vmsPath + "/ok")
        try StateDirectory.makeDirectory(state.vmsPath + "/not a name")
        #expect(try state.vmNames() == ["ok"])
    }
}
