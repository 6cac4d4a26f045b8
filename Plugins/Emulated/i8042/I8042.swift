import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// An Intel 8042 keyboard controller as on a PC/AT with PS/2 ports: data port 0x60, status and
/// command port 0x64, an MF2 keyboard on the first port and a PS/2 mouse on the aux port, plus
/// the chipset's System Control Port A (0x92: fast A20 gate and fast reset).
///
/// Timing: every command completes within the access that issues it, so IBF always reads 0 and
/// the timeout and parity-error status bits never set (the attached devices always answer).
///
/// Output path: each device keeps its own bytes (at most 16, like a PS/2 device's buffer; excess
/// is dropped and counted) and the controller moves the oldest byte of a device it listens to
/// into its one-byte output buffer whenever that is empty. A device whose interface is disabled
/// (command byte bits 4/5, commands AD/A7) keeps its bytes until it is enabled again. Bytes the
/// controller produces itself (command replies, D2/D3) overwrite the output buffer, as the 8042
/// documentation warns: a device byte still unread there is lost.
///
/// Interrupts: IRQ 1 is high while the output buffer holds a keyboard-side byte and command byte
/// bit 0 is set, IRQ 12 while it holds an aux byte and bit 1 is set. Reading port 0x60 empties
/// the buffer and lowers the line; the next byte then raises it again, a fresh edge for the PIC.
///
/// A20: the 8042 output port (bit 1) and port 0x92 (bit 1) gate address line 20 together, as
/// chipsets OR them. KVM never masks address line 20, so the gate is tracked for read-back only
/// and it powers on open; closing it is logged, since memory above 1 MiB stays visible anyway.
///
/// System reset (output port bit 0 low, a pulse command F0-FE with bit 0 clear, or a rising
/// edge on port 0x92 bit 0) asks the host to stop with the `reset_action` reason. An FADT may
/// name this as its RESET_REG: system I/O port 0x64, RESET_VALUE 0xFE.
final class I8042: VeneerDevice {
    enum Region {
        static let data: UInt32 = 0
        static let command: UInt32 = 1
        static let systemControlA: UInt32 = 2
    }

    enum Port {
        static let data: UInt16 = 0x60
        static let command: UInt16 = 0x64
        static let systemControlA: UInt16 = 0x92
    }

    enum Status {
        static let outputFull: UInt8 = 0x01
        static let inputFull: UInt8 = 0x02
        static let system: UInt8 = 0x04
        /// A2: the last byte written went to the command port.
        static let command: UInt8 = 0x08
        /// The keylock switch is not modelled: the keyboard is never inhibited.
        static let notInhibited: UInt8 = 0x10
        static let auxData: UInt8 = 0x20
        static let timeout: UInt8 = 0x40
        static let parityError: UInt8 = 0x80
    }

    enum CommandByte {
        static let keyboardInterrupt: UInt8 = 0x01
        static let auxInterrupt: UInt8 = 0x02
        static let system: UInt8 = 0x04
        static let keyboardDisabled: UInt8 = 0x10
        static let auxDisabled: UInt8 = 0x20
        static let translate: UInt8 = 0x40
        /// Bits 3 and 7 are reserved and read 0.
        static let defined: UInt8 = 0x77
        /// Both interfaces enabled, translation on and the keyboard interrupt enabled, as simple
        /// guests that never program the controller expect; the system flag is 0 (cold boot).
        static let powerOn: UInt8 = translate | keyboardInterrupt
    }

    enum OutputPort {
        static let notInReset: UInt8 = 0x01
        static let a20: UInt8 = 0x02
        static let keyboardOutputFull: UInt8 = 0x10
        static let auxOutputFull: UInt8 = 0x20
        /// Out of reset, A20 open, the clock and data lines (bits 2, 3, 6, 7) idle high.
        static let powerOn: UInt8 = 0xCF
    }

    enum SystemControlA {
        static let fastReset: UInt8 = 0x01
        static let a20: UInt8 = 0x02
    }

    enum ControllerCommand {
        static let readRAM: ClosedRange<UInt8> = 0x20...0x3F
        static let writeCommandByte: UInt8 = 0x60
        static let writeRAM: ClosedRange<UInt8> = 0x60...0x7F
        static let disableAux: UInt8 = 0xA7
        static let enableAux: UInt8 = 0xA8
        static let testAux: UInt8 = 0xA9
        static let selfTest: UInt8 = 0xAA
        static let testKeyboard: UInt8 = 0xAB
        static let disableKeyboard: UInt8 = 0xAD
        static let enableKeyboard: UInt8 = 0xAE
        static let readInputPort: UInt8 = 0xC0
        static let readOutputPort: UInt8 = 0xD0
        static let writeOutputPort: UInt8 = 0xD1
        static let writeKeyboardOutput: UInt8 = 0xD2
        static let writeAuxOutput: UInt8 = 0xD3
        static let writeAux: UInt8 = 0xD4
        static let readTestInputs: UInt8 = 0xE0
        static let pulseOutputPort: ClosedRange<UInt8> = 0xF0...0xFF

        /// Commands whose data byte the next write to port 0x60 carries.
        static func takesData(_ command: UInt8) -> Bool {
            writeRAM.contains(command) || (writeOutputPort...writeAux).contains(command)
        }
    }

    static let selfTestPassed: UInt8 = 0x55
    static let interfaceTestPassed: UInt8 = 0x00
    /// Input port (C0): keyboard not inhibited (bit 7), no manufacturing jumper (bit 5).
    static let inputPort: UInt8 = 0xA0
    static let ramSize = 32

    enum ResetAction: String {
        case reset, poweroff
    }

    static let inputToken: UInt64 = 1
    static let resumeInputWork: UInt64 = 1
    static let reportWork: UInt64 = 2

    let host: HostServices
    let keyboardIRQ: UInt32
    let auxIRQ: UInt32
    let resetAction: ResetAction
    let claimsSystemControlA: Bool
    let input: HostInput?

    // Guest-visible state (saved).
    /// The controller's internal RAM (commands 20-3F / 60-7F); byte 0 is the command byte.
    private var ram = InlineArray<32, UInt8>(repeating: 0)
    private var lastWriteWasCommand = false
    /// The controller command whose data byte the next write to port 0x60 carries, or 0.
    private var pendingWrite: UInt8 = 0
    /// Keeps its last byte when read: port 0x60 with OBF clear returns it again.
    private var outputBuffer: UInt8 = 0
    private var outputFull = false
    private var outputFromAux = false
    private var outputPort = OutputPort.powerOn
    private var systemControlA: UInt8 = 0
    private var translator = ScancodeTranslator()
    private var keyboard = PS2Keyboard()
    private var mouse = PS2Mouse()
    private var queue = DeviceOutputQueue()

    // Host-side bookkeeping (not saved: it describes this process's fds and IRQ lines).
    private var keyboardLine = false
    private var auxLine = false
    private var running = false
    private var watching = false
    private var inputEnded = false
    private var resumePosted = false
    private var reportPosted = false
    // Counters the exit path bumps and the event thread reports (logging allocates).
    private var droppedKeyboardBytes = 0
    private var droppedAuxBytes = 0
    private var unknownCommands = 0
    private var lastUnknownCommand: UInt8 = 0
    private var a20Closures = 0
    private var reported = (droppedKeyboard: 0, droppedAux: 0, unknown: 0, a20Closures: 0)

    /// On failure the caller still owns `input`, and no port stays claimed.
    init(host: HostServices, keyboardIRQ: UInt32, auxIRQ: UInt32, resetAction: ResetAction,
         claimSystemControlA: Bool, input: HostInput?) throws(PluginError) {
        var regions: [(UInt32, UInt16)] = [(Region.data, Port.data), (Region.command, Port.command)]
        if claimSystemControlA { regions.append((Region.systemControlA, Port.systemControlA)) }
        var claimed: [UInt32] = []
        do throws(PluginError) {
            for (region, port) in regions {
                try host.registerPortIO(region: region, port: port, length: 1)
                claimed.append(region)
            }
        } catch {
            for region in claimed { try? host.unregisterRegion(region) }
            throw error
        }
        self.host = host
        self.keyboardIRQ = keyboardIRQ
        self.auxIRQ = auxIRQ
        self.resetAction = resetAction
        self.claimsSystemControlA = claimSystemControlA
        self.input = input
    }

    deinit {
        if watching, let input { host.unwatch(fd: input.fd) }
        input?.close()
    }

    // MARK: derived state

    private var commandByte: UInt8 {
        get { ram[0] }
        set { ram[0] = newValue }
    }

    private var keyboardEnabled: Bool { commandByte & CommandByte.keyboardDisabled == 0 }
    private var auxEnabled: Bool { commandByte & CommandByte.auxDisabled == 0 }
    private var a20Open: Bool { (outputPort & OutputPort.a20) | (systemControlA & SystemControlA.a20) != 0 }

    private var status: UInt8 {
        var value = Status.notInhibited
        if outputFull { value |= Status.outputFull }
        if outputFromAux { value |= Status.auxData }
        if commandByte & CommandByte.system != 0 { value |= Status.system }
        if lastWriteWasCommand { value |= Status.command }
        return value
    }

    /// D0: the latched bits, with bits 4 and 5 showing which interrupt the output buffer drives.
    private var outputPortValue: UInt8 {
        var value = outputPort & ~(OutputPort.keyboardOutputFull | OutputPort.auxOutputFull)
        if outputFull { value |= outputFromAux ? OutputPort.auxOutputFull : OutputPort.keyboardOutputFull }
        return value
    }

    /// E0: T0 is the keyboard clock line (pulled low while the interface is disabled), T1 the
    /// keyboard data line (idle high).
    private var testInputs: UInt8 { (keyboardEnabled ? 0x01 : 0) | 0x02 }

    private func updateIRQ() {
        let keyboardLevel = outputFull && !outputFromAux && commandByte & CommandByte.keyboardInterrupt != 0
        let auxLevel = outputFull && outputFromAux && commandByte & CommandByte.auxInterrupt != 0
        if keyboardLevel != keyboardLine {
            keyboardLine = keyboardLevel
            host.setIRQ(line: keyboardIRQ, level: keyboardLevel)
        }
        if auxLevel != auxLine {
            auxLine = auxLevel
            host.setIRQ(line: auxIRQ, level: auxLevel)
        }
    }

    // MARK: lifecycle

    func reset() {
        ram = InlineArray(repeating: 0)
        commandByte = CommandByte.powerOn
        lastWriteWasCommand = false
        pendingWrite = 0
        outputBuffer = 0
        outputFull = false
        outputFromAux = false
        outputPort = OutputPort.powerOn
        systemControlA = 0
        translator = ScancodeTranslator()
        keyboard = PS2Keyboard()
        mouse = PS2Mouse()
        queue.removeAll()
        updateIRQ()
        syncInputWatch()
    }

    func start() {
        running = true
        syncInputWatch()
    }

    func stop() {
        running = false
        syncInputWatch()
    }

    // MARK: guest accesses (the VM-exit path: no allocation)

    /// Byte-wide ports: a wider write uses its low byte, a wider read leaves the other lanes at
    /// the host's all-ones (nothing else of this device answers there).
    func io(_ access: IOAccess, data: inout UInt64) {
        guard access.offset == 0 else { return }
        let byte = UInt8(truncatingIfNeeded: data)
        switch (access.region, access.isWrite) {
        case (Region.data, false): data = data & ~0xFF | UInt64(readData())
        case (Region.data, true): writeData(byte)
        case (Region.command, false): data = data & ~0xFF | UInt64(status)
        case (Region.command, true): writeCommand(byte)
        case (Region.systemControlA, false): data = data & ~0xFF | UInt64(systemControlA)
        case (Region.systemControlA, true): writeSystemControlA(byte)
        default: break
        }
    }

    private func readData() -> UInt8 {
        let value = outputBuffer
        guard outputFull else { return value }
        outputFull = false
        outputFromAux = false
        updateIRQ()
        refill()
        updateIRQ()
        requestInputResume()
        return value
    }

    private func writeCommand(_ command: UInt8) {
        lastWriteWasCommand = true
        // A new command abandons one still waiting for its data byte.
        pendingWrite = 0
        switch command {
        case ControllerCommand.readRAM:
            reply(ram[Int(command & 0x1F)])
        case _ where ControllerCommand.takesData(command):
            pendingWrite = command
        case ControllerCommand.disableAux:
            commandByte |= CommandByte.auxDisabled
        case ControllerCommand.enableAux:
            commandByte &= ~CommandByte.auxDisabled
        case ControllerCommand.testAux, ControllerCommand.testKeyboard:
            reply(Self.interfaceTestPassed)
        case ControllerCommand.selfTest:
            // The controller reinitialises: the command byte returns to its power-on value, with
            // the system flag set because the test passed.
            commandByte = CommandByte.powerOn | CommandByte.system
            translator = ScancodeTranslator()
            reply(Self.selfTestPassed)
        case ControllerCommand.disableKeyboard:
            commandByte |= CommandByte.keyboardDisabled
        case ControllerCommand.enableKeyboard:
            commandByte &= ~CommandByte.keyboardDisabled
        case ControllerCommand.readInputPort:
            reply(Self.inputPort)
        case ControllerCommand.readOutputPort:
            reply(outputPortValue)
        case ControllerCommand.readTestInputs:
            reply(testInputs)
        case ControllerCommand.pulseOutputPort:
            // Bits 0-3 clear pulse those output-port lines low; bit 0 is the CPU reset line.
            if command & OutputPort.notInReset == 0 { requestSystemReset() }
        default:
            unknownCommands += 1
            lastUnknownCommand = command
            scheduleReport()
        }
        refill()
        updateIRQ()
    }

    private func writeData(_ byte: UInt8) {
        lastWriteWasCommand = false
        let command = pendingWrite
        pendingWrite = 0
        switch command {
        case 0:
            sendToKeyboard(byte)
        case ControllerCommand.writeCommandByte:
            commandByte = byte & CommandByte.defined
        case ControllerCommand.writeRAM:
            ram[Int(command & 0x1F)] = byte
        case ControllerCommand.writeOutputPort:
            writeOutputPort(byte)
        case ControllerCommand.writeKeyboardOutput:
            reply(byte)
        case ControllerCommand.writeAuxOutput:
            reply(byte, fromAux: true)
        default: // ControllerCommand.writeAux
            sendToAux(byte)
        }
        refill()
        updateIRQ()
    }

    /// A byte the controller itself puts in the output buffer, over whatever was there.
    private func reply(_ byte: UInt8, fromAux: Bool = false) {
        outputBuffer = byte
        outputFull = true
        outputFromAux = fromAux
    }

    /// Moves the oldest byte of a device the controller listens to into the empty output buffer.
    private func refill() {
        while !outputFull, let next = queue.popFirst(keyboard: keyboardEnabled, aux: auxEnabled) {
            if next.source == .keyboard, commandByte & CommandByte.translate != 0 {
                // A swallowed F0 leaves the buffer empty: the loop takes the next byte.
                guard let translated = translator.translate(next.byte) else { continue }
                outputBuffer = translated
            } else {
                outputBuffer = next.byte
            }
            outputFull = true
            outputFromAux = next.source == .aux
        }
    }

    /// Sending to a device needs its clock line released, so it enables that interface again.
    private func sendToKeyboard(_ byte: UInt8) {
        commandByte &= ~CommandByte.keyboardDisabled
        deliver(keyboard.receive(byte), from: .keyboard)
        // Enable or reset may have restarted scanning.
        requestInputResume()
    }

    private func sendToAux(_ byte: UInt8) {
        commandByte &= ~CommandByte.auxDisabled
        deliver(mouse.receive(byte), from: .aux)
    }

    private func deliver(_ reply: DeviceReply, from source: DeviceOutputQueue.Source) {
        if reply.flushesBuffer { queue.removeAll(from: source) }
        for i in 0..<reply.count { enqueue(reply[i], from: source) }
    }

    private func enqueue(_ byte: UInt8, from source: DeviceOutputQueue.Source) {
        guard queue.push(byte, from: source) else {
            if source == .aux { droppedAuxBytes += 1 } else { droppedKeyboardBytes += 1 }
            scheduleReport()
            return
        }
        if source == .aux { mouse.lastSent = byte } else { keyboard.lastSent = byte }
    }

    private func writeOutputPort(_ value: UInt8) {
        let wasOpen = a20Open
        outputPort = value & ~(OutputPort.keyboardOutputFull | OutputPort.auxOutputFull)
        noteA20(wasOpen: wasOpen)
        if value & OutputPort.notInReset == 0 { requestSystemReset() }
    }

    private func writeSystemControlA(_ value: UInt8) {
        let wasOpen = a20Open
        let before = systemControlA
        systemControlA = value
        noteA20(wasOpen: wasOpen)
        if value & SystemControlA.fastReset != 0, before & SystemControlA.fastReset == 0 { requestSystemReset() }
    }

    private func noteA20(wasOpen: Bool) {
        guard wasOpen, !a20Open else { return }
        a20Closures += 1
        scheduleReport()
    }

    private func requestSystemReset() {
        host.requestStop(resetAction == .poweroff ? .powerOff : .reset)
    }

    // MARK: reports from the event thread

    private func scheduleReport() {
        guard !reportPosted else { return }
        reportPosted = true
        host.postWork(token: Self.reportWork)
    }

    private func report() {
        reportPosted = false
        if droppedKeyboardBytes != reported.droppedKeyboard {
            host.log(.warning, "keyboard output full: dropped \(droppedKeyboardBytes - reported.droppedKeyboard) bytes (\(droppedKeyboardBytes) in all)")
        }
        if droppedAuxBytes != reported.droppedAux {
            host.log(.warning, "aux output full: dropped \(droppedAuxBytes - reported.droppedAux) bytes (\(droppedAuxBytes) in all)")
        }
        if unknownCommands != reported.unknown {
            host.log(.warning, "ignored \(unknownCommands - reported.unknown) unsupported controller command(s), the last 0x\(String(lastUnknownCommand, radix: 16))")
        }
        if a20Closures != reported.a20Closures {
            host.log(.warning, "the guest closed the A20 gate; KVM does not mask address line 20, so memory above 1 MiB stays visible")
        }
        reported = (droppedKeyboardBytes, droppedAuxBytes, unknownCommands, a20Closures)
    }

    // MARK: host input

    /// Scancodes are read only while the keyboard can take them: the VM runs, the input has not
    /// ended, the keyboard is scanning and its buffer has room. Everything else waits in the fd.
    private var wantsInput: Bool {
        running && input != nil && !inputEnded && keyboard.scanning
            && queue.count(from: .keyboard) < DeviceOutputQueue.perDevice
    }

    /// Watches or unwatches the input fd to match `wantsInput` (not from the exit path).
    private func syncInputWatch() {
        guard let input else { return }
        if wantsInput, !watching {
            do {
                try host.watch(fd: input.fd, events: .readable, token: Self.inputToken)
                watching = true
            } catch {
                inputEnded = true
                host.log(.error, "keyboard input disabled: \(error)")
            }
        } else if !wantsInput, watching {
            host.unwatch(fd: input.fd)
            watching = false
        }
    }

    /// From the exit path: once the keyboard buffer has drained to half (not per byte), ask the
    /// event thread to resume watching the input.
    private func requestInputResume() {
        guard !watching, !resumePosted, wantsInput,
              queue.count(from: .keyboard) <= DeviceOutputQueue.perDevice / 2 else { return }
        resumePosted = true
        host.postWork(token: Self.resumeInputWork)
    }

    func workPosted(token: UInt64) {
        switch token {
        case Self.resumeInputWork:
            resumePosted = false
            syncInputWatch()
        case Self.reportWork:
            report()
        default:
            break
        }
    }

    func fdReady(token: UInt64, events: FDEvents) {
        guard token == Self.inputToken, let input else { return }
        guard wantsInput else { return syncInputWatch() }
        let room = DeviceOutputQueue.perDevice - queue.count(from: .keyboard)
        let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: DeviceOutputQueue.perDevice) { buffer in
            let n = read(input.fd, buffer.baseAddress, room)
            for i in 0..<max(n, 0) { enqueue(buffer[i], from: .keyboard) }
            return (n, errno)
        }
        switch result.0 {
        case 1...:
            break
        case 0:
            inputEnded = true
            host.log(.info, "keyboard input reached its end")
        default:
            if result.1 != EAGAIN, result.1 != EWOULDBLOCK, result.1 != EINTR {
                inputEnded = true
                host.log(.error, "keyboard input stopped: read failed: \(errnoText(result.1))")
            }
        }
        refill()
        updateIRQ()
        syncInputWatch()
    }

    // MARK: state

    /// Version 1: the 32 RAM bytes (command byte first); A2, OBF, AUXB, translator break-pending
    /// (bool each); pending data command, output buffer, output port, port 0x92 (u8 each); the
    /// keyboard (scanning as bool; scan code set, typematic, LEDs, awaited argument, last sent as
    /// u8); the mouse (reporting, remote, wrap, 2:1 scaling as bool; sample rate, resolution,
    /// awaited argument, last sent as u8); then the device bytes not yet in the output buffer,
    /// oldest first, as a u32 count of (source u8: 0 keyboard, 1 aux; byte u8) pairs.
    func save(to state: inout StateWriter) {
        for i in 0..<Self.ramSize { state.write(ram[i]) }
        state.write(lastWriteWasCommand)
        state.write(outputFull)
        state.write(outputFromAux)
        state.write(translator.breakPending)
        state.write(pendingWrite)
        state.write(outputBuffer)
        state.write(outputPort)
        state.write(systemControlA)
        state.write(keyboard.scanning)
        state.write(keyboard.scancodeSet)
        state.write(keyboard.typematic)
        state.write(keyboard.leds)
        state.write(keyboard.awaitingArgument)
        state.write(keyboard.lastSent)
        state.write(mouse.reporting)
        state.write(mouse.remoteMode)
        state.write(mouse.wrapMode)
        state.write(mouse.scaling21)
        state.write(mouse.sampleRate)
        state.write(mouse.resolution)
        state.write(mouse.awaitingArgument)
        state.write(mouse.lastSent)
        let queued = queue.contents
        state.write(UInt32(queued.count))
        for entry in queued {
            state.write(entry.source.rawValue)
            state.write(entry.byte)
        }
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("i8042 state version \(version) is unknown (this plugin writes 1)") }
        var ram = InlineArray<32, UInt8>(repeating: 0)
        for i in 0..<Self.ramSize { ram[i] = try state.read() }
        let lastWriteWasCommand = try state.readBool()
        let outputFull = try state.readBool()
        let outputFromAux = try state.readBool()
        var translator = ScancodeTranslator()
        translator.breakPending = try state.readBool()
        let pendingWrite: UInt8 = try state.read()
        let outputBuffer: UInt8 = try state.read()
        let outputPort: UInt8 = try state.read()
        let systemControlA: UInt8 = try state.read()
        var keyboard = PS2Keyboard()
        keyboard.scanning = try state.readBool()
        keyboard.scancodeSet = try state.read()
        keyboard.typematic = try state.read()
        keyboard.leds = try state.read()
        keyboard.awaitingArgument = try state.read()
        keyboard.lastSent = try state.read()
        var mouse = PS2Mouse()
        mouse.reporting = try state.readBool()
        mouse.remoteMode = try state.readBool()
        mouse.wrapMode = try state.readBool()
        mouse.scaling21 = try state.readBool()
        mouse.sampleRate = try state.read()
        mouse.resolution = try state.read()
        mouse.awaitingArgument = try state.read()
        mouse.lastSent = try state.read()
        let queuedCount = Int(try state.read(UInt32.self))
        guard queuedCount <= DeviceOutputQueue.capacity else {
            throw StateError("\(queuedCount) queued device bytes exceed \(DeviceOutputQueue.capacity)")
        }
        var queue = DeviceOutputQueue()
        for i in 0..<queuedCount {
            let sourceValue: UInt8 = try state.read()
            let byte: UInt8 = try state.read()
            guard let source = DeviceOutputQueue.Source(rawValue: sourceValue) else {
                throw StateError("queued byte \(i) has source \(sourceValue) (0 keyboard, 1 aux)")
            }
            guard queue.push(byte, from: source) else {
                throw StateError("more than \(DeviceOutputQueue.perDevice) queued \(source) bytes")
            }
        }
        try state.finish()

        let commandByte = ram[0]
        guard commandByte & ~CommandByte.defined == 0 else {
            throw StateError("command byte \(hex(commandByte)) has reserved bits set")
        }
        guard pendingWrite == 0 || ControllerCommand.takesData(pendingWrite) else {
            throw StateError("pending command \(hex(pendingWrite)) takes no data byte")
        }
        guard outputFull || !outputFromAux else { throw StateError("AUXB set with the output buffer empty") }
        guard claimsSystemControlA || systemControlA == 0 else {
            throw StateError("port 0x92 holds \(hex(systemControlA)) but this instance does not claim port 0x92")
        }
        guard keyboard.isValid else { throw StateError("keyboard settings out of range") }
        guard mouse.isValid else { throw StateError("mouse settings out of range") }
        let keyboardListened = commandByte & CommandByte.keyboardDisabled == 0
        let auxListened = commandByte & CommandByte.auxDisabled == 0
        guard outputFull || !queue.hasByte(keyboard: keyboardListened, aux: auxListened) else {
            throw StateError("the output buffer is empty while an enabled device has bytes waiting")
        }

        self.ram = ram
        self.lastWriteWasCommand = lastWriteWasCommand
        self.outputFull = outputFull
        self.outputFromAux = outputFromAux
        self.translator = translator
        self.pendingWrite = pendingWrite
        self.outputBuffer = outputBuffer
        self.outputPort = outputPort
        self.systemControlA = systemControlA
        self.keyboard = keyboard
        self.mouse = mouse
        self.queue = queue
        updateIRQ()
        syncInputWatch()
    }
}

private func hex(_ value: UInt8) -> String { "0x" + String(value, radix: 16) }
