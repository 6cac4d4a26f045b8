import Foundation
import Testing
import VeneerHost

/// Generation 1 VMs on the real KVM: gen1-test.s drives every default PC device through the
/// in-kernel 8259 pair, IOAPIC and LAPIC, and its sibling images end the VM through ACPI S5 or an
/// i8042 reset.
///
/// Serialized: the guest counts timer interrupts against the PM timer, and a dozen VMs at once
/// on a small host starve each other's event threads of the CPU (the guest discounts the time
/// its own vCPU did not run, but cannot see a late device timer).
@Suite(.serialized, .enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct Gen1DeviceTests {
    /// What gen1-test.s prints when every check passes, in this order.
    static let checkLines = [
        "gen1: acpi ok: ",
        "gen1: pm timer ok: ",
        "gen1: pit ok: ",
        "gen1: rtc ok: ",
        "gen1: rtc periodic ok: ",
        "gen1: rtc update ok: ",
        "gen1: i8042 ok: ",
        "gen1: i8042 irqs ok: ",
        "gen1: all checks passed ",
    ]

    /// A generation 1 VM booting one of the gen1 images, with a debug-exit port (so a failing guest
    /// reports status 1) and `extra` config text after it.
    static func config(image: String, extra: String = "") throws -> String {
        try VeneerProcess.config("""
            generation = 1
            memory = "64M"
            [boot]
            image = "{root}/examples/guests/build/\(image)"
            mode = "long"
            [[device]]
            plugin = "debug-exit"
            \(extra)
            """)
    }

    /// Every check line, in order, and no failure.
    static func expectAllChecksPassed(_ r: VeneerProcess.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(!r.stdout.contains("FAILED"), "\(r.stdout)", sourceLocation: sourceLocation)
        var next = lines.startIndex
        for prefix in checkLines {
            guard let found = lines[next...].firstIndex(where: { $0.hasPrefix(prefix) }) else {
                Issue.record("no line '\(prefix)...' in order in:\n\(r.stdout)", sourceLocation: sourceLocation)
                return
            }
            next = found + 1
        }
    }

    // MARK: (a) the example config

    @Test func exampleConfigPassesEveryCheck() throws {
        let r = try VeneerProcess.veneer(["run", "examples/gen1.toml"])
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        Self.expectAllChecksPassed(r)
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    /// Each check is live: a device wired elsewhere than the guest expects makes that check fail.
    @Test(arguments: [
        ("plugin = \"pit8254\"\nirq = 5", "gen1: FAILED pit: "),
        ("plugin = \"cmos-rtc\"\nirq = 10", "gen1: FAILED rtc periodic: "),
        ("plugin = \"acpi-pm\"\nsmi_cmd_port = 0", "gen1: FAILED acpi: "),
        ("plugin = \"i8042\"\nirq_kbd = 5", "gen1: FAILED i8042 irqs: "),
    ])
    func aMiswiredDeviceFailsItsCheck(device: String, failure: String) throws {
        let config = try Self.config(image: "gen1-test.bin", extra: "[[device]]\n\(device)")
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == 1, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains(failure), "\(r.stdout)")
    }

    // MARK: (b) ACPI S5

    @Test func acpiS5PowersTheVMOff() throws {
        let config = try Self.config(image: "gen1-poweroff.bin")
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", config])
        #expect(r.status == MachineExit.powerOff.exitStatus, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        Self.expectAllChecksPassed(r)
        #expect(r.stdout.hasSuffix("gen1: powering off through ACPI S5\n"), "\(r.stdout)")
        #expect(r.stderr.contains("veneer: info: [vm] \(MachineExit.powerOff.description)"), "\(r.stderr)")
    }

    // MARK: (c) i8042 reset

    @Test func i8042ResetStopsTheVMWithTheResetReason() throws {
        let config = try Self.config(image: "gen1-reset.bin")
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", config])
        #expect(r.status == MachineExit.reset.exitStatus, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        Self.expectAllChecksPassed(r)
        #expect(r.stdout.hasSuffix("gen1: resetting through the i8042 (command 0xfe)\n"), "\(r.stdout)")
        #expect(r.stderr.contains("veneer: info: [vm] \(MachineExit.reset.description)"), "\(r.stderr)")
        #expect(!r.stderr.contains(MachineExit.powerOff.description))
    }

    @Test func i8042ResetActionPowerOffTurnsTheResetIntoAPowerOff() throws {
        let config = try Self.config(image: "gen1-reset.bin", extra: """
            [[device]]
            plugin = "i8042"
            reset_action = "poweroff"
            """)
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", config])
        #expect(r.status == MachineExit.powerOff.exitStatus, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        Self.expectAllChecksPassed(r)
        #expect(r.stderr.contains("veneer: info: [vm] \(MachineExit.powerOff.description)"), "\(r.stderr)")
        #expect(!r.stderr.contains(MachineExit.reset.description))
    }

    // MARK: ACPI shutdown through the power button

    /// A power button input that is a regular file: one byte, one press at start. The status bit
    /// latches until the guest enables the event, takes the SCI and powers off. (The event loop
    /// once refused regular files, which epoll cannot poll, so the press never came.)
    @Test func powerButtonFromAFileShutsTheGuestDown() throws {
        let press = try VeneerProcess.config("x", name: "press")
        let config = try Self.config(image: "gen1-powerbutton.bin", extra: """
            [[device]]
            plugin = "acpi-pm"
            power_button = "\(press)"
            """)
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", config])
        #expect(r.status == MachineExit.powerOff.exitStatus, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        Self.expectAllChecksPassed(r)
        #expect(r.stdout.contains("gen1: power button ok: "), "\(r.stdout)")
        #expect(r.stderr.contains("veneer: info: [vm] \(MachineExit.powerOff.description)"), "\(r.stderr)")
        #expect(!r.stderr.contains("error"), "\(r.stderr)")
    }

    /// A FIFO: the press comes from a writer while the VM runs.
    @Test func powerButtonFromAFIFOShutsTheGuestDown() throws {
        let fifo = try VeneerProcess.config("", name: "placeholder") + ".fifo"
        try #require(mkfifo(fifo, 0o600) == 0, "mkfifo \(fifo): errno \(errno)")
        defer { unlink(fifo) }
        let config = try Self.config(image: "gen1-powerbutton.bin", extra: """
            [[device]]
            plugin = "acpi-pm"
            power_button = "\(fifo)"
            """)
        // Press once the device has the FIFO open (a non-blocking open for writing fails with
        // ENXIO until then), a second into the run: mostly while the guest waits for it.
        let pressed = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            defer { pressed.signal() }
            let deadline = Date().addingTimeInterval(20)
            var fd: Int32 = -1
            while fd < 0, Date() < deadline {
                fd = open(fifo, O_WRONLY | O_NONBLOCK)
                if fd < 0 { usleep(10_000) }
            }
            guard fd >= 0 else { return }
            usleep(1_000_000)
            _ = write(fd, "x", 1)
            close(fd)
        }
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", config])
        pressed.wait()
        #expect(r.status == MachineExit.powerOff.exitStatus, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("gen1: power button ok: "), "\(r.stdout)")
        #expect(r.stderr.contains("veneer: info: [vm] \(MachineExit.powerOff.description)"), "\(r.stderr)")
    }

    /// No press: the guest waits 5 s for the SCI and then reports the failure itself.
    @Test func powerButtonNeverPressedFailsTheGuest() throws {
        let config = try Self.config(image: "gen1-powerbutton.bin")
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == 1, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("gen1: FAILED acpi: no power button SCI"), "\(r.stdout)")
    }

    // MARK: (d) the RTC's time

    /// The time and weekday register the guest printed: "gen1: rtc ok: <ISO 8601 UTC> weekday <1-7> ...".
    static func guestTime(_ stdout: String) throws -> (date: Date, weekday: Int) {
        let prefix = "gen1: rtc ok: "
        let line = try #require(stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }, "\(stdout)")
        let fields = line.dropFirst(prefix.count).split(separator: " ")
        try #require(fields.count >= 3 && fields[1] == "weekday", "\(line)")
        let date = try #require(ISO8601DateFormatter().date(from: String(fields[0])), "\(line)")
        let weekday = try #require(Int(fields[2]), "\(line)")
        return (date, weekday)
    }

    /// The RTC weekday register counts 1 = Sunday, as Foundation's Gregorian calendar does.
    static func expectWeekday(_ weekday: Int, of date: Date, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(secondsFromGMT: 0))
        #expect(weekday == calendar.component(.weekday, from: date), "\(date)", sourceLocation: sourceLocation)
    }

    /// The default `start = "host"`: the guest must read the host's UTC time. The RTC shows whole
    /// seconds aligned with the host's, so the time read lies between this test's clock before
    /// the run (rounded down) and after it; one second of slack either way covers a clock step.
    @Test func rtcReadsTheHostsUTCTime() throws {
        let before = Date()
        let r = try VeneerProcess.veneer(["run", "examples/gen1.toml"])
        let after = Date()
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        let guest = try Self.guestTime(r.stdout)
        let earliest = before.timeIntervalSince1970.rounded(.down) - 1
        let latest = after.timeIntervalSince1970 + 1
        #expect((earliest...latest).contains(guest.date.timeIntervalSince1970),
                "guest read \(guest.date), the run lasted from \(before) to \(after)")
        try Self.expectWeekday(guest.weekday, of: guest.date)
    }

    /// A fixed `start`: the guest reads that time plus at most the run's length, with the right
    /// weekday, also where the century and year fields all roll over.
    @Test(arguments: ["2099-12-31T23:59:59", "2024-02-29T12:34:56"])
    func rtcReadsAFixedStartTime(start: String) throws {
        let config = try Self.config(image: "gen1-test.bin", extra: """
            [[device]]
            plugin = "cmos-rtc"
            start = "\(start)"
            """)
        let startDate = try #require(ISO8601DateFormatter().date(from: start + "Z"))
        let before = Date()
        let r = try VeneerProcess.veneer(["run", config])
        let runLength = Date().timeIntervalSince(before)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        let guest = try Self.guestTime(r.stdout)
        let offset = guest.date.timeIntervalSince(startDate)
        #expect(offset >= 0 && offset <= runLength + 1, "guest read \(guest.date) for start \(start), run of \(runLength) s")
        try Self.expectWeekday(guest.weekday, of: guest.date)
    }

    // MARK: (e) veneer check

    /// The six default devices (ids and plugins as Generation.defaultDevices names them), plus the
    /// config's own debug-exit; a generation 2 config with the same devices lists only that.
    @Test func checkListsTheSixDefaultDevices() throws {
        let defaults = ["com1: serial16550 ", "pit: pit8254 ", "rtc: cmos-rtc ", "kbd: i8042 ", "pm: acpi-pm ", "pci: pci-host "]
        let r = try VeneerProcess.veneer(["check", "examples/gen1.toml"])
        #expect(r.status == 0, "\(r.stderr)")
        // After the devices, `check` describes the CPU model (its "cpu: template" line is no device).
        let devices = r.stdout.split(separator: "\n").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("cpu: template ") }
        #expect(devices.count == defaults.count + 1, "\(r.stdout)")
        for prefix in defaults + ["exit: debug-exit "] {
            #expect(devices.filter { $0.hasPrefix(prefix) }.count == 1, "'\(prefix)' in:\n\(r.stdout)")
        }

        let generationTwo = try VeneerProcess.config("""
            generation = 2
            [boot]
            image = "{root}/examples/guests/build/gen1-test.bin"
            mode = "long"
            [[device]]
            id = "exit"
            plugin = "debug-exit"
            """)
        let two = try VeneerProcess.veneer(["check", generationTwo])
        #expect(two.status == 0, "\(two.stderr)")
        let twoDevices = two.stdout.split(separator: "\n").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("cpu: template ") }
        #expect(twoDevices.count == 1 && twoDevices.first?.hasPrefix("exit: debug-exit ") == true, "\(two.stdout)")
    }

    /// A listed device of a default plugin replaces the default, parameters and all.
    @Test func checkShowsAReplacedDefaultOnce() throws {
        let config = try Self.config(image: "gen1-reset.bin", extra: """
            [[device]]
            plugin = "i8042"
            reset_action = "poweroff"
            """)
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == 0, "\(r.stderr)")
        let keyboards = r.stdout.split(separator: "\n").filter { $0.contains(": i8042 ") }
        #expect(keyboards.count == 1, "\(r.stdout)")
        #expect(keyboards.first?.contains("reset_action=\"poweroff\"") == true, "\(r.stdout)")
    }
}
