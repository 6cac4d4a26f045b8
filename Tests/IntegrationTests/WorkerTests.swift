import Foundation
import Testing
import VeneerHost
import WorkerControlProtocol

/// `veneer run --control-dir`: the worker veneerd drives, exercised over its control socket with
/// the counting guest (examples/counter.toml).
@Suite(.serialized, .enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct WorkerTests {
    @Test func helloInfoAndFiles() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        let client = try worker.client()
        let hello = try #require(try client.request(.hello).hello)
        #expect(hello.version == WorkerControl.version)
        #expect(hello.pid == worker.pid)
        #expect(hello.name == "counter")
        let info = try worker.waitFor(.running)
        #expect(info.vcpus == 2)
        #expect(info.memoryBytes == 32 << 20)
        #expect(info.devices.contains { $0.id == "pm" && $0.plugin == "acpi-pm" && $0.kind == "emulated" })
        #expect(info.overheadBytes > 0, "VmRSS beyond resident guest pages")
        let pidText = try String(contentsOfFile: worker.controlDirectory + "/" + WorkerControl.pidFileName, encoding: .utf8)
        #expect(pidText == "\(worker.pid)\n")
        var st = stat()
        #expect(stat(worker.socketPath, &st) == 0 && st.st_mode & 0o777 == 0o600, "control.sock is 0600")
        #expect(stat(worker.controlDirectory, &st) == 0 && st.st_mode & 0o777 == 0o700, "the control directory is 0700")
        kill(worker.pid, SIGTERM)
        #expect(worker.waitForExit() == 128 + SIGTERM)
    }

    @Test func pauseHoldsEveryVCPUOutAndResumeGoesOnWithoutABurst() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        let client = try worker.client()
        let console = try ConsoleStream(worker)
        try console.read(timeout: 30) { _ in console.reports.count >= 5 }
        let events = try worker.client()
        #expect(try events.request(.events).ok)
        #expect(try events.readLine()?.contains("\"Running\"") == true)

        let paused = try client.request(.pause)
        #expect(paused.ok && paused.info?.state == .paused, "\(String(describing: paused.error))")
        #expect(try events.readLine()?.contains("paused by request") == true)
        // What the guest wrote before it stopped may still be on its way: take it, then watch.
        _ = try console.drain(for: 0.3)
        let before = try #require(console.reports.last)
        let exitsBefore = try #require(try client.request(.metrics).metrics).vcpus
        let runningBefore = try #require(try client.request(.info).info).runningMs
        let quiet = try console.drain(for: 1.5)
        let exitsAfter = try #require(try client.request(.metrics).metrics).vcpus
        let runningAfter = try #require(try client.request(.info).info).runningMs
        #expect(quiet.isEmpty, "the guest printed while paused: \(quiet)")
        #expect(exitsBefore.count == 2)
        #expect(exitsBefore == exitsAfter, "a vCPU left the guest again while paused")
        #expect(runningAfter == runningBefore, "paused time counts as running")

        let resumed = try client.request(.resume)
        #expect(resumed.ok && resumed.info?.state == .running)
        #expect(try events.readLine()?.contains("resumed by request") == true)
        let reportsAtResume = console.reports.count
        try console.read(timeout: 30) { _ in console.reports.count >= reportsAtResume + 5 }
        let after = console.reports.dropFirst(reportsAtResume)
        let first = try #require(after.first)
        let last = try #require(after.last)
        // The count goes on from where it stopped, at the next report step (a report comes at the
        // first tick at or past each multiple of 10), not after a burst of replayed ticks.
        #expect(first.tick > before.tick && first.tick < before.tick + 30, "ticks went from \(before.tick) to \(first.tick)")
        #expect(first.count > before.count)
        // The PM timer (host time) ran through the pause; the PIT did not: its lag behind the
        // PM timer grew by about the pause. Replaying the missed ticks would have closed it.
        let lagBefore = Int64(before.pm) - Int64(before.tick)
        let lagAfter = Int64(last.pm) - Int64(last.tick)
        #expect(lagAfter - lagBefore >= 75, "PIT lag \(lagBefore) -> \(lagAfter) ticks across a 1.8 s pause")
        let exits = try #require(try client.request(.metrics).metrics).vcpus
        #expect((exits[0].exits["io"] ?? 0) > (exitsAfter[0].exits["io"] ?? 0), "vCPU 0 runs again")
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }

    @Test func shutdownPressesThePowerButton() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        let console = try ConsoleStream(worker)
        try console.read(timeout: 30) { $0.contains("count ") }
        let response = try worker.client().request(.shutdown)
        #expect(response.ok, "\(String(describing: response.error))")
        #expect(response.detail?.contains("ACPI power button") == true, "\(String(describing: response.detail))")
        try console.read(timeout: 30) { $0.contains("power button\n") }
        #expect(console.text.contains("power button\n"))
        #expect(worker.waitForExit() == 0)
        let record = try worker.exitRecord()
        #expect(record.reason == "powerOff")
        #expect(record.status == 0)
        #expect(!FileManager.default.fileExists(atPath: worker.socketPath), "the socket goes with the worker")
        #expect(!FileManager.default.fileExists(atPath: worker.controlDirectory + "/" + WorkerControl.pidFileName))
    }

    @Test func stopEndsTheWorker() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        let client = try worker.client()
        #expect(try client.request(.pause).ok)
        let response = try client.request(.stop)
        #expect(response.ok && response.info?.state == .stopping)
        #expect(worker.waitForExit() == 0)
        let record = try worker.exitRecord()
        #expect(record.reason == "stopped")
        #expect(record.message == "stopped by request")
    }

    @Test func sigtermIsAStop() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        kill(worker.pid, SIGTERM)
        #expect(worker.waitForExit() == 128 + SIGTERM)
        let record = try worker.exitRecord()
        #expect(record.reason == "stopped")
        #expect(record.status == 128 + SIGTERM)
    }

    @Test func resetRestartsTheGuestInTheSameWorker() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        let console = try ConsoleStream(worker)
        try console.read(timeout: 30) { $0.contains("count ") }
        let events = try worker.client()
        #expect(try events.request(.events).ok)
        let response = try worker.client().request(.reset)
        #expect(response.ok)
        var seen: [String] = []
        while let line = try events.readLine(timeout: 30), !line.contains("\"Running\"") || seen.isEmpty { seen.append(line) }
        #expect(seen.contains { $0.contains("\"Starting\"") && $0.contains("reset by request") }, "\(seen)")
        try console.read(timeout: 30) { $0.components(separatedBy: "counter: started").count >= 3 }
        #expect(console.text.components(separatedBy: "counter: started").count >= 3, "the guest booted again: \(console.text.suffix(300))")
        let info = try worker.waitFor(.running)
        #expect(info.resets == 1)
        #expect(info.pid == worker.pid)
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }

    @Test func deviceRequestsAreRoutedAndRefusedWithCodes() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        let client = try worker.client()
        let noControl = try client.request(.device, device: "com1", body: #"{"op":"status"}"#)
        #expect(!noControl.ok && noControl.error?.code == .unsupported, "\(String(describing: noControl.error))")
        let missing = try client.request(.device, device: "nic9", body: #"{"op":"status"}"#)
        #expect(missing.error?.code == .notFound)
        let notObject = try client.request(.device, device: "pm", body: "[1,2]")
        #expect(notObject.error?.code == .invalid)
        let unknownOp = try client.request(.device, device: "pm", body: #"{"op":"sleep-button"}"#)
        #expect(unknownOp.error?.code == .unsupported)
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }

    @Test func lateConsoleSeesTheRingAndInputReachesTheGuest() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        // Wait for output the ring must have kept, then attach.
        let first = try ConsoleStream(worker)
        try first.read(timeout: 30) { _ in first.reports.count >= 3 }
        let late = try ConsoleStream(worker)
        try late.read(timeout: 10) { $0.contains("count ") }
        #expect(late.text.hasPrefix("counter: started\n"), "\(late.text.prefix(200))")
        try late.client.send(Array("Z".utf8))
        try late.read(timeout: 30) { $0.contains("echo: Z\n") }
        #expect(late.text.contains("echo: Z\n"))
        // Both streams see live output.
        try first.read(timeout: 30) { $0.contains("echo: Z\n") }
        #expect(first.text.contains("echo: Z\n"))
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }

    @Test func metricsCountExitsPerVCPU() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        _ = try worker.waitFor(.running)
        let metrics = try #require(try worker.client().request(.metrics).metrics)
        #expect(metrics.vcpus.map(\.index) == [0, 1])
        #expect((metrics.vcpus[0].exits["io"] ?? 0) > 0)
        #expect(Set(metrics.vcpus[1].exits.keys) == Set(ExitReason.allCases.map(\.name)))
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }

    @Test func malformedAndOversizedRequestsGetErrors() throws {
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        let client = try worker.client()
        try client.send(Array("not json\n".utf8))
        let bad = try client.response()
        #expect(!bad.ok && bad.error?.code == .invalid)
        try client.send(Array(#"{"id":7,"op":"fly"}"#.utf8) + [0x0A])
        let unknown = try client.response()
        #expect(unknown.id == 7 && unknown.error?.code == .invalid)
        #expect(try client.request(.hello).ok, "the connection keeps serving")
        let big = try worker.client()
        try big.send([UInt8](repeating: 0x20, count: WorkerControl.maxRequestBytes + 10))
        let tooLong = try big.response()
        #expect(tooLong.error?.code == .invalid)
        #expect(try big.readLine(timeout: 5) == nil, "the connection is closed after an oversized line")
        #expect(try worker.client().request(.hello).ok, "the worker keeps serving")
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }

    @Test func otherUIDsAreRefusedByPeerCredentials() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            print("SKIPPED: needs root, setpriv and python3 to connect as another uid")
            return
        }
        let worker = try WorkerProcess(config: try WorkerProcess.counterConfig())
        // Open the file permissions so only SO_PEERCRED stands in the way.
        chmod(worker.directory, 0o755)
        chmod(worker.controlDirectory, 0o755)
        chmod(worker.socketPath, 0o666)
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            try:
                s.sendall(b'{"id":1,"op":"hello"}\\n')
            except OSError:
                pass  # the worker may already have closed the connection
            data = b''
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    break  # the worker closed with our request unread: what it sent came first
                if not chunk: break
                data += chunk
            print(data.decode())
            """
        let r = try VeneerProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                           "/usr/bin/python3", "-c", script, worker.socketPath], timeout: 30)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("permission denied"), "\(r.stdout) \(r.stderr)")
        #expect(!r.stdout.contains("\"hello\""))
        #expect(worker.log.contains("refused a connection from uid 65534"))
        #expect(try worker.client().request(.hello).ok)
        kill(worker.pid, SIGTERM)
        _ = worker.waitForExit()
    }
}
