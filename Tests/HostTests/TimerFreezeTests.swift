import Testing
import VeneerPluginABI
@testable import VeneerHost

/// Freezing device timers across a pause: time left kept, periodic timers resume on their own
/// cadence with the periods inside the pause dropped, an undelivered expiry delivered once.
struct TimerFreezeTests {
    typealias Arm = TimerFreeze.Arm

    @Test func oneShotKeepsItsTimeLeft() {
        #expect(TimerFreeze.remaining(Arm(deadline: 1_500, period: 0), now: 1_000, undelivered: false) == 500)
        let resumed = TimerFreeze.resumed(remaining: 500, period: 0, now: 9_000)
        #expect(resumed == Arm(deadline: 9_500, period: 0), "fires 500 ns after the resume, however long the pause")
    }

    @Test func aOneShotAlreadyDeliveredIsNotRearmed() {
        #expect(TimerFreeze.remaining(Arm(deadline: 900, period: 0), now: 1_000, undelivered: false) == nil)
    }

    @Test func anExpiryTheDeviceHasNotSeenIsDeliveredOnceAtResume() {
        #expect(TimerFreeze.remaining(Arm(deadline: 900, period: 0), now: 1_000, undelivered: true) == 0)
        #expect(TimerFreeze.remaining(Arm(deadline: 100, period: 100), now: 1_050, undelivered: true) == 0)
        let resumed = TimerFreeze.resumed(remaining: 0, period: 100, now: 5_000)
        #expect(resumed == Arm(deadline: 5_000, period: 100))
    }

    @Test func periodicTimersKeepTheirPhaseAndDropMissedPeriods() {
        // Armed at 1000 every 300: expiries at 1000, 1300, 1600, ... Frozen at 1450: next at 1600.
        let left = TimerFreeze.remaining(Arm(deadline: 1_000, period: 300), now: 1_450, undelivered: false)
        #expect(left == 150)
        // A 10 s pause: the first expiry after it is 150 ns in, then every 300; nothing replayed.
        let resumed = TimerFreeze.resumed(remaining: 150, period: 300, now: 10_000_001_450)
        #expect(resumed == Arm(deadline: 10_000_001_600, period: 300))
        // Frozen exactly on an expiry the kernel has already counted and delivered.
        #expect(TimerFreeze.remaining(Arm(deadline: 1_000, period: 300), now: 1_600, undelivered: false) == 0)
        // Not yet started: the whole first wait is kept.
        #expect(TimerFreeze.remaining(Arm(deadline: 2_000, period: 300), now: 1_450, undelivered: false) == 550)
    }

    @Test func resumeNeverOverflowsOrDisarms() {
        #expect(TimerFreeze.resumed(remaining: .max, period: 0, now: 10).deadline == .max)
        #expect(TimerFreeze.resumed(remaining: 0, period: 0, now: 0).deadline == 1, "deadline 0 would disarm a timerfd")
    }
}

/// Management requests waiting for a device: answered once, by the device or by the deadline.
struct ControlRequestTableTests {
    final class Answers: @unchecked Sendable {
        var list: [ControlRequestTable.Answer] = []
    }

    @Test func answeredOnceByTheDevice() {
        let table = ControlRequestTable()
        let answers = Answers()
        let id = table.begin(deadline: 100) { answers.list.append($0) }
        #expect(table.answer(id, status: .ok, text: "{}") == .ok)
        #expect(table.answer(id, status: .ok, text: "{}") == .invalid, "a second answer is refused")
        table.expire(now: 1_000)
        #expect(answers.list == [ControlRequestTable.Answer(status: .ok, text: "{}")])
        #expect(table.isEmpty)
    }

    @Test func expiredAtTheDeadlineAndTheLateReplyRefused() {
        let table = ControlRequestTable()
        let answers = Answers()
        let early = table.begin(deadline: 100) { answers.list.append($0) }
        let later = table.begin(deadline: 200) { answers.list.append($0) }
        #expect(early != later)
        table.expire(now: 99)
        #expect(answers.list.isEmpty)
        table.expire(now: 100)
        #expect(answers.list.map(\.status) == [.again])
        #expect(table.answer(early, status: .ok, text: "{}") == .invalid, "too late")
        #expect(table.answer(later, status: .unsupported, text: "no") == .ok)
        #expect(answers.list.map(\.status) == [.again, .unsupported])
    }

    @Test func answersMapToWorkerErrorCodes() {
        func code(_ status: veneer_status, timedOut: Bool = false, stopping: Bool = false) -> String {
            switch Machine.outcome(ControlRequestTable.Answer(status: status, text: "x"), device: "d", timedOut: timedOut, stopping: stopping) {
            case .success(let text): "ok \(text)"
            case .failure(let error): error.code.rawValue
            }
        }
        #expect(code(.ok) == "ok x")
        #expect(code(.invalid) == "invalid")
        #expect(code(.unsupported) == "unsupported")
        #expect(code(.again) == "conflict", "the device cannot do it now")
        #expect(code(.again, timedOut: true) == "timeout")
        #expect(code(.again, stopping: true) == "conflict")
        #expect(code(.ioError) == "failed")
    }
}
