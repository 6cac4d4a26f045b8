import Foundation
import Testing
import VeneerHost

/// `veneer ctl` against a real veneerd, its workers and the counter guest: every lifecycle
/// command, the text and JSON forms, the console over a pipe, events, and the error lines with
/// their distinct exit statuses.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct CtlRoundTripTests {
    @Test func lifecycleThroughTheCLI() throws {
        let veneerd = try VeneerdUnderTest()
        defer { veneerd.tearDown() }
        let events = try InteractiveProcess(VeneerProcess.executable, ["ctl", "events", "--json", "--socket", veneerd.socket])
        defer { events.terminate() }

        #expect(try veneerd.json(["list"]) as? [Any] != nil, "list --json is a JSON array")
        let config = try CounterGuest.config(name: "rt1")
        let defined = try veneerd.ctl(["define", config])
        #expect(defined.status == 0, "\(defined.stderr)")
        #expect(defined.stdout == "defined VM 'rt1' (Off)\n")

        // Defining it again: a conflict, one line, status 4.
        let again = try veneerd.ctl(["define", config])
        #expect(again.status == 4)
        #expect(again.stderr.hasPrefix("veneer: ") && again.stderr.filter { $0 == "\n" }.count == 1, "\(again.stderr)")

        let off = try veneerd.details("rt1")
        #expect(off.state == "Off")
        #expect(off.worker == nil)

        let started = try veneerd.ctl(["start", "rt1"])
        #expect(started.status == 0, "\(started.stderr)")
        #expect(started.stdout == "rt1: Running\n" || started.stdout == "rt1: Starting\n", "\(started.stdout)")
        try veneerd.waitForState("rt1", "Running")

        // The table: a header and the VM's row.
        let list = try veneerd.ctl(["list"])
        let rows = list.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first == ["NAME", "STATE", "VCPUS", "MEMORY", "UPTIME", "PID"])
        let running = try veneerd.details("rt1")
        let pid = try #require(running.pid)
        #expect(rows.dropFirst().contains { $0.first == "rt1" && $0.contains("Running") && $0.last == "\(pid)" && $0.contains("MiB") }, "\(list.stdout)")
        #expect((running.worker?["pid"] as? NSNumber)?.int32Value == pid)

        let info = try veneerd.ctl(["info", "rt1"])
        #expect(info.status == 0)
        #expect(info.stdout.contains("state:") && info.stdout.contains("Running") && info.stdout.contains("com1: serial16550"), "\(info.stdout)")

        // Pause, a second pause refused with the current state, resume.
        #expect(try veneerd.ctl(["pause", "rt1"]).stdout == "rt1: Paused\n")
        let twice = try veneerd.ctl(["pause", "rt1"])
        #expect(twice.status == 4)
        #expect(twice.stderr.hasPrefix("veneer: ") && twice.stderr.contains("Paused"), "\(twice.stderr)")
        #expect(try veneerd.ctl(["resume", "rt1"]).stdout == "rt1: Running\n")

        // The console on a pipe: output arrives, input is echoed by the guest, Ctrl-] detaches.
        let console = try InteractiveProcess(VeneerProcess.executable, ["ctl", "console", "rt1", "--socket", veneerd.socket])
        try console.waitForOutput(containing: "count ")
        console.write(Array("Z".utf8))
        try console.waitForOutput(containing: "echo: Z")
        console.write([0x1D])
        #expect(try console.wait() == 0)
        #expect(console.stderr.contains("detach with Ctrl-]") && console.stderr.contains("Detached"), "\(console.stderr)")
        #expect(try veneerd.details("rt1").state == "Running", "detaching leaves the VM running")

        let metrics = try veneerd.ctl(["metrics"])
        #expect(metrics.status == 0)
        #expect(metrics.stdout.contains("veneer_vcpu_exits_total") && metrics.stdout.contains("rt1"), "\(metrics.stdout.prefix(2000))")

        // The power button: the guest powers itself off.
        let shutdown = try veneerd.ctl(["shutdown", "rt1"])
        #expect(shutdown.status == 0, "\(shutdown.stderr)")
        try veneerd.waitForState("rt1", "Off")
        try waitUntil("the worker exited with the guest", timeout: 30) { ProcessLiveness.isGone(pid) }

        // A hard stop.
        #expect(try veneerd.ctl(["start", "rt1"]).status == 0)
        try veneerd.waitForState("rt1", "Running")
        let stop = try veneerd.ctl(["stop", "rt1", "--json"])
        #expect(stop.status == 0, "\(stop.stderr)")
        let stopped = VMInfo(try JSONSerialization.jsonObject(with: Data(stop.stdout.utf8)))
        #expect(stopped.state == "Off", "\(stop.stdout)")

        #expect(try veneerd.ctl(["delete", "rt1"]).stdout == "deleted VM 'rt1'\n")
        let gone = try veneerd.ctl(["info", "rt1"])
        #expect(gone.status == 3)
        #expect(gone.stderr.hasPrefix("veneer: ") && gone.stderr.contains("rt1"), "\(gone.stderr)")

        // The event stream saw the VM go through its states, as ndjson.
        try waitUntil("the delete's Off event", timeout: 30) { events.stdout.components(separatedBy: "\"Off\"").count >= 3 }
        events.terminate()
        let lines = events.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(lines.count == events.stdout.split(separator: "\n").count, "every line is a JSON object")
        let states = lines.filter { $0["name"] as? String == "rt1" }.compactMap { $0["state"] as? String }
        for state in ["Starting", "Running", "Paused", "Off"] { #expect(states.contains(state), "\(states)") }
    }

    @Test func errorsAreOneLineWithDistinctStatuses() throws {
        let veneerd = try VeneerdUnderTest()
        defer { veneerd.tearDown() }

        func oneLine(_ r: VeneerProcess.Result) -> Bool {
            r.stdout.isEmpty && r.stderr.hasPrefix("veneer: ") && r.stderr.filter { $0 == "\n" }.count == 1
        }
        let missing = try veneerd.ctl(["start", "nosuch"])
        #expect(missing.status == 3 && oneLine(missing), "\(missing)")

        let badName = try veneerd.ctl(["info", "bad!name"])
        #expect(badName.status == 65 && oneLine(badName) && badName.stderr.contains("name"), "\(badName)")

        // A config that parses but names a device no plugin provides: refused with its reason.
        let invalid = try VeneerProcess.config("""
            name = "broken"
            [boot]
            image = "{root}/examples/guests/build/counter.bin"
            format = "flat"
            mode = "long"
            [[device]]
            plugin = "no-such-plugin"
            """)
        let refused = try veneerd.ctl(["define", invalid])
        #expect(refused.status == 65 && oneLine(refused) && refused.stderr.contains("no-such-plugin"), "\(refused)")

        let noFile = try veneerd.ctl(["define", "/nonexistent/vm.toml"])
        #expect(noFile.status == 66 && oneLine(noFile), "\(noFile)")

        let off = try CounterGuest.config(name: "err1")
        try veneerd.define(off)
        let notRunning = try veneerd.ctl(["pause", "err1"])
        #expect(notRunning.status == 4 && oneLine(notRunning) && notRunning.stderr.contains("Off"), "\(notRunning)")
        let consoleOff = try veneerd.ctl(["console", "err1"])
        #expect(consoleOff.status == 4 && oneLine(consoleOff), "\(consoleOff)")

        let noSocket = try VeneerProcess.run(VeneerProcess.executable, ["ctl", "list", "--socket", veneerd.stateDirectory + "/nothing.sock"])
        #expect(noSocket.status == 69 && oneLine(noSocket) && noSocket.stderr.contains("cannot connect"), "\(noSocket)")

        let usage = try veneerd.ctl(["kvp", "err1", "set", "onlykey"])
        #expect(usage.status == 64 && oneLine(usage), "\(usage)")
    }
}

enum ProcessLiveness {
    /// True once `pid` no longer exists (reaped by its parent, or never was).
    static func isGone(_ pid: Int32) -> Bool {
        kill(pid, 0) != 0 && errno == ESRCH
    }
}
