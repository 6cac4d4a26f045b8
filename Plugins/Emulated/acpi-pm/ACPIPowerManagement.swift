import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// ACPI fixed hardware of a PC chipset's power-management function (as on PIIX4/ICH, without
/// SMM): the PM1a event and control blocks, the PM timer, a GPE0 block and the SMI command port
/// that switches between legacy and ACPI mode.
///
/// What the FADT must declare (the core's FADT generator uses these same defaults):
///
///     PM1a_EVT_BLK = pm1a_evt (0x600), PM1_EVT_LEN = 4: PM1_STS at +0, PM1_EN at +2 (16 bits each)
///     PM1a_CNT_BLK = pm1a_cnt (0x604), PM1_CNT_LEN = 2
///     PM1b_EVT_BLK = PM1b_CNT_BLK = PM2_CNT_BLK = 0
///     PM_TMR_BLK   = pm_tmr (0x608),   PM_TMR_LEN = 4, flags.TMR_VAL_EXT = 0 (a 24-bit counter)
///     GPE0_BLK     = gpe0 (0x620),     GPE0_BLK_LEN = 4: GPE0_STS at +0, GPE0_EN at +2 (GPEs 0-15)
///     GPE1_BLK     = 0, GPE1_BASE = 0
///     SMI_CMD      = smi_cmd_port (0xB2), ACPI_ENABLE = 0xF0, ACPI_DISABLE = 0xF1,
///                    S4BIOS_REQ = PSTATE_CNT = CST_CNT = 0
///                    (smi_cmd_port = 0: SMI_CMD = ACPI_ENABLE = ACPI_DISABLE = 0; SCI_EN is then
///                    set from power-on, the platform is ACPI-only)
///     SCI_INT      = sci_irq (9), with a MADT interrupt source override making it level-triggered
///                    and active high: the device drives the line's logical level
///     flags        = PWR_BUTTON = 0 (fixed power button), SLP_BUTTON = 1 (no sleep button),
///                    FIX_RTC = 1 (no RTC wake status here), TMR_VAL_EXT = 0
///     DSDT         = \_S5 = Package () { s5_slp_typ, s5_slp_typ, 0, 0 } (default 5), and no \_S1-\_S4
///
/// Sleep: SLP_EN with SLP_TYP = s5_slp_typ powers the VM off. S1-S4 are not supported: another
/// sleep type is logged and ignored, except that WAK_STS is set at once, as if a wake event had
/// ended the sleep immediately; an OS that tried anyway (ACPICA polls WAK_STS after SLP_EN) then
/// carries on instead of spinning forever.
///
/// Events: TMR_STS sets whenever bit 23 of the timer toggles, PWRBTN_STS when a byte arrives on
/// the `power_button` input or management sends the "power-button" request, WAK_STS as above.
/// BM_STS, GBL_STS (no SMM firmware to release the global lock), SLPBTN_STS and RTC_STS never
/// set; their enable bits keep what is written. No GPE source is wired yet: GPE0 status bits come
/// only from restored state, so the block exists for the FADT and for future sources (hot-plug).
///
/// The SCI is high while SCI_EN is set and (PM1_STS & PM1_EN) has an event this device raises,
/// or (GPE0_STS & GPE0_EN) != 0. With SCI_EN clear, events would be SMIs, and there is no SMM.
///
/// Reset clears the status, enable and control registers; the PM timer keeps counting, as the
/// chipset's free-running counter does across a platform reset.
final class ACPIPowerManagement: VeneerDevice {
    enum Region {
        static let pm1Event: UInt32 = 0
        static let pm1Control: UInt32 = 1
        static let timer: UInt32 = 2
        static let gpe0: UInt32 = 3
        static let smiCommand: UInt32 = 4
    }

    enum BlockLength {
        static let pm1Event = 4
        static let pm1Control = 2
        static let timer = 4
        static let gpe0 = 4
        static let smiCommand = 1
    }

    enum PM1Status {
        static let timer: UInt16 = 1 << 0
        static let busMaster: UInt16 = 1 << 4
        static let global: UInt16 = 1 << 5
        static let powerButton: UInt16 = 1 << 8
        static let sleepButton: UInt16 = 1 << 9
        static let rtc: UInt16 = 1 << 10
        static let wake: UInt16 = 1 << 15
        /// The status bits this hardware ever sets.
        static let raised: UInt16 = timer | powerButton | wake
    }

    enum PM1Enable {
        static let timer: UInt16 = 1 << 0
        static let global: UInt16 = 1 << 5
        static let powerButton: UInt16 = 1 << 8
        static let sleepButton: UInt16 = 1 << 9
        static let rtc: UInt16 = 1 << 10
        static let writable: UInt16 = timer | global | powerButton | sleepButton | rtc
        /// Enables whose status this device raises: the only ones that can signal the SCI.
        static let signalling: UInt16 = timer | powerButton
    }

    enum PM1Control {
        static let sciEnable: UInt16 = 1 << 0
        static let busMasterReload: UInt16 = 1 << 1
        /// GBL_RLS: write-only, would raise an SMI for the firmware; there is none.
        static let globalRelease: UInt16 = 1 << 2
        static let sleepTypeShift: UInt16 = 10
        static let sleepType: UInt16 = 7 << sleepTypeShift
        /// SLP_EN: write-only, reads 0.
        static let sleepEnable: UInt16 = 1 << 13
        /// What guest writes change; SCI_EN belongs to the hardware (the SMI command switches it).
        static let guestWritable: UInt16 = busMasterReload | sleepType
        static let stored: UInt16 = sciEnable | guestWritable
    }

    enum SMICommand {
        static let acpiEnable: UInt8 = 0xF0
        static let acpiDisable: UInt8 = 0xF1
    }

    /// The timer's status toggles with bit 23 of the count.
    static let timerStatusShift: UInt64 = 23
    static let timerMask: UInt64 = 0xFF_FFFF

    static let overflowTimer: UInt64 = 1
    static let powerButtonToken: UInt64 = 1
    static let reportWork: UInt64 = 1

    let host: HostServices
    let sciLine: UInt32
    let s5SleepType: UInt16
    /// nil: no SMI command port, the platform is always in ACPI mode.
    let smiCommandPort: UInt16?
    let powerButton: HostInput?

    // Guest-visible state (saved).
    private var pm1Status: UInt16 = 0
    private var pm1Enable: UInt16 = 0
    private var pm1Control: UInt16 = 0
    private var gpeStatus: UInt16 = 0
    private var gpeEnable: UInt16 = 0
    private var timer: PMTimer
    /// Bit 23 period (count >> 23) last folded into TMR_STS.
    private var timerPeriod: UInt64

    // Host-side bookkeeping (not saved).
    private var sciAsserted = false
    private var running = false
    private var timerArmed = false
    private var armedDeadline: UInt64 = 0
    private var watching = false
    private var powerButtonEnded = false
    private var reportPosted = false
    private var ignoredSleeps = 0
    private var reportedSleeps = 0
    private var lastIgnoredSleepType: UInt16 = 0

    struct Ports {
        var pm1Event: UInt16
        var pm1Control: UInt16
        var timer: UInt16
        var gpe0: UInt16
        var smiCommand: UInt16?
    }

    /// On failure the caller still owns `powerButton`, and no port stays claimed.
    init(host: HostServices, ports: Ports, sciLine: UInt32, s5SleepType: UInt16, powerButton: HostInput?) throws(PluginError) {
        var regions: [(UInt32, UInt16, Int)] = [
            (Region.pm1Event, ports.pm1Event, BlockLength.pm1Event),
            (Region.pm1Control, ports.pm1Control, BlockLength.pm1Control),
            (Region.timer, ports.timer, BlockLength.timer),
            (Region.gpe0, ports.gpe0, BlockLength.gpe0),
        ]
        if let smi = ports.smiCommand { regions.append((Region.smiCommand, smi, BlockLength.smiCommand)) }
        var claimed: [UInt32] = []
        do throws(PluginError) {
            for (region, port, length) in regions {
                guard Int(port) + length <= 0x10000 else {
                    throw PluginError("ports \(hex(port))+\(length) run past 0xffff")
                }
                try host.registerPortIO(region: region, port: port, length: UInt32(length))
                claimed.append(region)
            }
        } catch {
            for region in claimed { try? host.unregisterRegion(region) }
            throw error
        }
        self.host = host
        self.sciLine = sciLine
        self.s5SleepType = s5SleepType
        self.smiCommandPort = ports.smiCommand
        self.powerButton = powerButton
        timer = PMTimer(count: 0, at: host.now)
        timerPeriod = 0
    }

    deinit {
        if watching, let powerButton { host.unwatch(fd: powerButton.fd) }
        powerButton?.close()
    }

    // MARK: derived state

    private var powerOnControl: UInt16 { smiCommandPort == nil ? PM1Control.sciEnable : 0 }
    private var acpiMode: Bool { pm1Control & PM1Control.sciEnable != 0 }

    private var sciLevel: Bool {
        acpiMode && (pm1Status & pm1Enable & PM1Enable.signalling != 0 || gpeStatus & gpeEnable != 0)
    }

    /// Folds timer bit-23 toggles since the last look into TMR_STS, then drives the SCI.
    private func refresh() {
        let period = timer.count(at: host.now) >> Self.timerStatusShift
        if period != timerPeriod {
            timerPeriod = period
            pm1Status |= PM1Status.timer
        }
        let level = sciLevel
        guard level != sciAsserted else { return }
        sciAsserted = level
        host.setIRQ(line: sciLine, level: level)
    }

    // MARK: lifecycle

    func reset() {
        pm1Status = 0
        pm1Enable = 0
        pm1Control = powerOnControl
        gpeStatus = 0
        gpeEnable = 0
        timerPeriod = timer.count(at: host.now) >> Self.timerStatusShift
        refresh()
        syncOverflowTimer()
    }

    func start() {
        running = true
        syncOverflowTimer()
        syncPowerButtonWatch()
    }

    func stop() {
        running = false
        syncOverflowTimer()
        syncPowerButtonWatch()
    }

    // MARK: guest accesses (the VM-exit path: no allocation)

    func io(_ access: IOAccess, data: inout UInt64) {
        switch access.region {
        case Region.pm1Event: pm1EventAccess(access, &data)
        case Region.pm1Control: pm1ControlAccess(access, &data)
        case Region.timer: timerAccess(access, &data)
        case Region.gpe0: gpeAccess(access, &data)
        case Region.smiCommand: smiCommandAccess(access, data)
        default: break
        }
    }

    private func pm1EventAccess(_ access: IOAccess, _ data: inout UInt64) {
        let lanes = ByteLanes(offset: access.offset, size: access.size, blockLength: BlockLength.pm1Event, data: data)
        refresh()
        guard access.isWrite else {
            data = lanes.read(UInt64(pm1Status) | UInt64(pm1Enable) << 16, into: data)
            return
        }
        // PM1_STS bits are write-1-to-clear; PM1_EN keeps what is written to its defined bits.
        let status = lanes.register16(at: 0), enable = lanes.register16(at: 2)
        pm1Status &= ~status.value
        pm1Enable = pm1Enable & ~enable.mask | enable.value & PM1Enable.writable
        refresh()
        if enable.mask != 0 { syncOverflowTimer() }
    }

    private func pm1ControlAccess(_ access: IOAccess, _ data: inout UInt64) {
        let lanes = ByteLanes(offset: access.offset, size: access.size, blockLength: BlockLength.pm1Control, data: data)
        guard access.isWrite else {
            data = lanes.read(UInt64(pm1Control), into: data)
            return
        }
        let written = lanes.register16(at: 0)
        let merged = pm1Control & ~written.mask | written.value
        pm1Control = pm1Control & PM1Control.sciEnable | merged & PM1Control.guestWritable
        if written.value & PM1Control.sleepEnable != 0 {
            enterSleep(type: (merged & PM1Control.sleepType) >> PM1Control.sleepTypeShift)
        }
    }

    private func timerAccess(_ access: IOAccess, _ data: inout UInt64) {
        // Read-only; a write changes nothing, but any access is a chance to catch up TMR_STS.
        refresh()
        guard !access.isWrite else { return }
        let lanes = ByteLanes(offset: access.offset, size: access.size, blockLength: BlockLength.timer, data: data)
        data = lanes.read(timer.count(at: host.now) & Self.timerMask, into: data)
    }

    private func gpeAccess(_ access: IOAccess, _ data: inout UInt64) {
        let lanes = ByteLanes(offset: access.offset, size: access.size, blockLength: BlockLength.gpe0, data: data)
        guard access.isWrite else {
            data = lanes.read(UInt64(gpeStatus) | UInt64(gpeEnable) << 16, into: data)
            return
        }
        let status = lanes.register16(at: 0), enable = lanes.register16(at: 2)
        gpeStatus &= ~status.value
        gpeEnable = gpeEnable & ~enable.mask | enable.value
        refresh()
    }

    /// Write-only: the firmware's switch between legacy (SMI) and ACPI (SCI) mode. Reads float.
    private func smiCommandAccess(_ access: IOAccess, _ data: UInt64) {
        guard access.isWrite, access.offset == 0 else { return }
        switch UInt8(truncatingIfNeeded: data) {
        case SMICommand.acpiEnable: pm1Control |= PM1Control.sciEnable
        case SMICommand.acpiDisable: pm1Control &= ~PM1Control.sciEnable
        default: return
        }
        refresh()
    }

    private func enterSleep(type: UInt16) {
        guard type != s5SleepType else {
            host.requestStop(.powerOff)
            return
        }
        pm1Status |= PM1Status.wake
        ignoredSleeps += 1
        lastIgnoredSleepType = type
        guard !reportPosted else { return }
        reportPosted = true
        host.postWork(token: Self.reportWork)
    }

    // MARK: the timer's bit-23 toggle

    /// A host timer is armed for the next toggle only while TMR_EN could turn it into an SCI;
    /// otherwise TMR_STS is caught up lazily whenever the guest looks.
    private var overflowTimerNeeded: Bool { running && pm1Enable & PM1Enable.timer != 0 }

    private func syncOverflowTimer() {
        guard overflowTimerNeeded else {
            if timerArmed {
                timerArmed = false
                host.cancelTimer(token: Self.overflowTimer)
            }
            return
        }
        let deadline = timer.time(reaching: (timerPeriod + 1) << Self.timerStatusShift)
        guard !timerArmed || deadline != armedDeadline else { return }
        timerArmed = true
        armedDeadline = deadline
        host.armTimer(token: Self.overflowTimer, deadline: deadline)
    }

    func timerFired(token: UInt64) {
        guard token == Self.overflowTimer else { return }
        timerArmed = false
        refresh()
        syncOverflowTimer()
    }

    // MARK: power button

    private var wantsPowerButton: Bool { running && powerButton != nil && !powerButtonEnded }

    private func syncPowerButtonWatch() {
        guard let powerButton else { return }
        if wantsPowerButton, !watching {
            do {
                try host.watch(fd: powerButton.fd, events: .readable, token: Self.powerButtonToken)
                watching = true
            } catch {
                powerButtonEnded = true
                host.log(.error, "power button input disabled: \(error)")
            }
        } else if !wantsPowerButton, watching {
            host.unwatch(fd: powerButton.fd)
            watching = false
        }
    }

    func fdReady(token: UInt64, events: FDEvents) {
        guard token == Self.powerButtonToken, let powerButton else { return }
        guard wantsPowerButton else { return syncPowerButtonWatch() }
        // Every byte is a press; presses that arrive together are one (PWRBTN_STS is one bit).
        let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            (read(powerButton.fd, buffer.baseAddress, buffer.count), errno)
        }
        switch result.0 {
        case 1...:
            pressPowerButton()
        case 0:
            powerButtonEnded = true
            host.log(.info, "power button input reached its end")
        default:
            if result.1 != EAGAIN, result.1 != EWOULDBLOCK, result.1 != EINTR {
                powerButtonEnded = true
                host.log(.error, "power button input stopped: read failed: \(errnoText(result.1))")
            }
        }
        syncPowerButtonWatch()
    }

    // MARK: management (ABI 1.8)

    /// `{"op":"power-button"}` presses the power button, as a byte on the `power_button` input
    /// does (the guest sees PWRBTN_STS and, if it enabled the event, an SCI) → `{}`.
    func control(_ request: ControlRequest) -> ControlReply? {
        switch request.op {
        case "power-button":
            guard running else { return .failure(.notNow, message: "the VM is not running") }
            pressPowerButton()
            return .done
        case "":
            return .failure(.invalid, message: "the request has no 'op' (this device takes \"power-button\")")
        default:
            return .failure(.unsupported, message: "acpi-pm has no op '\(request.op)' (it takes \"power-button\")")
        }
    }

    private func pressPowerButton() {
        pm1Status |= PM1Status.powerButton
        refresh()
        if !acpiMode {
            host.log(.warning, "power button pressed before the guest enabled ACPI (SCI_EN = 0): the press is latched and raises the SCI once it does")
        } else if pm1Enable & PM1Enable.powerButton == 0 {
            host.log(.warning, "power button pressed while its event is disabled (PWRBTN_EN = 0): the press is latched in PWRBTN_STS until the guest enables it")
        } else {
            host.log(.info, "power button pressed")
        }
    }

    func workPosted(token: UInt64) {
        guard token == Self.reportWork else { return }
        reportPosted = false
        guard ignoredSleeps != reportedSleeps else { return }
        host.log(.warning, "ignored \(ignoredSleeps - reportedSleeps) request(s) to sleep with SLP_TYP \(lastIgnoredSleepType): "
            + "only S5 (SLP_TYP \(s5SleepType)) is supported; WAK_STS set so the guest resumes")
        reportedSleeps = ignoredSleeps
    }

    // MARK: state

    /// Version 1: PM1_STS, PM1_EN, PM1_CNT (SCI_EN, BM_RLD, SLP_TYP), GPE0_STS, GPE0_EN (u16
    /// each), then the PM timer's full count (u64). TMR_STS includes toggles not yet looked at,
    /// so saving changes nothing and two saves in a row agree.
    func save(to state: inout StateWriter) {
        let count = timer.count(at: host.now)
        let pendingToggle = count >> Self.timerStatusShift != timerPeriod
        state.write(pm1Status | (pendingToggle ? PM1Status.timer : 0))
        state.write(pm1Enable)
        state.write(pm1Control)
        state.write(gpeStatus)
        state.write(gpeEnable)
        state.write(count)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("acpi-pm state version \(version) is unknown (this plugin writes 1)") }
        let pm1Status: UInt16 = try state.read()
        let pm1Enable: UInt16 = try state.read()
        let pm1Control: UInt16 = try state.read()
        let gpeStatus: UInt16 = try state.read()
        let gpeEnable: UInt16 = try state.read()
        let count: UInt64 = try state.read()
        try state.finish()

        guard pm1Status & ~PM1Status.raised == 0 else {
            throw StateError("PM1_STS \(hex(pm1Status)) has bits this hardware never sets")
        }
        guard pm1Enable & ~PM1Enable.writable == 0 else { throw StateError("PM1_EN \(hex(pm1Enable)) has reserved bits set") }
        guard pm1Control & ~PM1Control.stored == 0 else {
            throw StateError("PM1_CNT \(hex(pm1Control)) has bits that are never stored")
        }
        guard smiCommandPort != nil || pm1Control & PM1Control.sciEnable != 0 else {
            throw StateError("SCI_EN is clear, but without an SMI command port nothing could set it")
        }

        self.pm1Status = pm1Status
        self.pm1Enable = pm1Enable
        self.pm1Control = pm1Control
        self.gpeStatus = gpeStatus
        self.gpeEnable = gpeEnable
        // The count continues from the saved value on this host's clock.
        timer = PMTimer(count: count, at: host.now)
        timerPeriod = count >> Self.timerStatusShift
        refresh()
        syncOverflowTimer()
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
