// The HTTP handler threads: a fixed set for handlers that block (database calls, response writes). Not to be
// confused with the `Worker` module, which runs jobs.
import Foundation

/// Runs closures on `count` long-lived threads, first come first served.
final class HandlerThreadPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var tasks: [(() -> Void)?] = []
    private var head = 0
    private var stopping = false
    private var threads: [Thread] = []
    private var running = 0

    init(count: Int, name: String) {
        precondition(count >= 1, "a handler thread pool needs a thread")
        for index in 0..<count {
            let thread = Thread { [unowned self] in self.loop() }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            running += 1
            thread.start()
        }
    }

    func submit(_ task: @escaping () -> Void) {
        condition.lock()
        tasks.append(task)
        condition.unlock()
        // After unlocking: a thread woken while the lock is still held only blocks on it again (a futex wait
        // and wake more per request). No wake-up is lost: a waiter checks for tasks under the lock first.
        condition.signal()
    }

    /// Lets queued tasks finish, then ends the threads and waits for them.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while head == tasks.count && !stopping { condition.wait() }
            if head == tasks.count {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            // Clear the slot so the closure, and whatever it captured (upload temp files), is released now.
            let task = tasks[head]!
            tasks[head] = nil
            head += 1
            // Drop finished entries now and then so the array does not grow without bound.
            if head > 1024 && head * 2 > tasks.count {
                tasks.removeFirst(head)
                head = 0
            }
            condition.unlock()
            task()
        }
    }
}
