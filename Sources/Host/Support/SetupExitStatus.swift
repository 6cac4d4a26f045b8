/// The statuses `veneer` exits with when a VM cannot be set up, sysexits(3)-style. They sit
/// apart from the small statuses a guest reports through debug-exit (QEMU's encoding makes a
/// passing guest exit 1), so a script can tell "the VM never ran" from "the guest said so".
/// Run-time failures keep their own: 70 (a vCPU's fatal exit), 71 (a device failed), 128 + n
/// (signal n); see `MachineExit`. README.md "Exit status" documents the whole table.
public enum SetupExitStatus {
    /// EX_USAGE: the command line is wrong (unknown option, bad `--log-level`).
    public static let usage: Int32 = 64
    /// EX_DATAERR: the config is invalid (syntax, NUL, nesting, unknown key, bad parameter value,
    /// a boot image whose contents cannot be booted).
    public static let badConfig: Int32 = 65
    /// EX_NOINPUT: the config or a file it names cannot be read (missing, unreadable, a FIFO,
    /// device or directory, too large).
    public static let noInput: Int32 = 66
    /// EX_UNAVAILABLE: the host cannot run the VM (no /dev/kvm, a missing KVM capability, guest
    /// RAM or a system resource cannot be had).
    public static let hostUnavailable: Int32 = 69
    /// EX_CONFIG: a plugin cannot be found, loaded or accepted, or refused to create its device.
    public static let plugin: Int32 = 78
}

/// `text` on one line: control characters a config or a library put into a message (a string
/// value written with `\n`, a multi-line parser diagnostic) are shown escaped, so every error stays
/// the one line scripts and people expect.
public func oneLine(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return text }
    var result = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7f:
            result += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result
}
