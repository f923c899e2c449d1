import CorralCore
import GuestAgent

/// A running VM's guest agent as `status` sees it: the last answer, refreshed in the background once it is older
/// than `maxAge`, with at most one query in flight. `status` waits for the agent only when there is no answer yet, and
/// at most `firstWait` (the real client has its own, shorter bound); after that it shows the last answer at once, so
/// `corral ls` stays fast whether the agent answers or not.
actor GuestAgentCache {
    enum Answer: Sendable, Equatable {
        case interfaces([GuestInterface])
        case notAnswering(GuestAgentError)

        /// `status.agent`.
        var label: String {
            if case .interfaces = self { return "connected" }
            return "not answering"
        }
    }

    static let defaultMaxAge: Duration = .seconds(2)
    static let defaultFirstWait: Duration = .seconds(2)

    let agent: any GuestAgent
    let maxAge: Duration
    let firstWait: Duration
    private var last: (answer: Answer, at: ContinuousClock.Instant)?
    private var inFlight: Task<Answer, Never>?

    init(agent: any GuestAgent, maxAge: Duration = GuestAgentCache.defaultMaxAge,
         firstWait: Duration = GuestAgentCache.defaultFirstWait) {
        self.agent = agent
        self.maxAge = maxAge
        self.firstWait = firstWait
    }

    /// The freshest answer there is: cached, or (the first time) the agent's own.
    func answer() async -> Answer {
        if let last, last.at.duration(to: .now) < maxAge { return last.answer }
        let query = inFlight ?? refresh()
        if let last { return last.answer }
        // The query goes on past the wait; its answer is recorded when it comes.
        let answer = await TaskDeadline.value(of: query, within: firstWait,
                                              otherwise: .notAnswering(.timeout(after: firstWait)))
        // A query that outlasts the first wait counts as not answering until it ends (and `record`s its answer).
        if last == nil { last = (answer, .now) }
        return answer
    }

    /// Stops a query in flight from being recorded (the QEMU is gone).
    func close() {
        inFlight?.cancel()
        inFlight = nil
    }

    private func refresh() -> Task<Answer, Never> {
        let agent = agent
        let query = Task { [weak self] () -> Answer in
            let answer: Answer
            do throws(GuestAgentError) {
                answer = .interfaces(try await agent.networkInterfaces())
            } catch {
                answer = .notAnswering(error)
            }
            await self?.record(answer)
            return answer
        }
        inFlight = query
        return query
    }

    private func record(_ answer: Answer) {
        guard inFlight != nil else { return }
        last = (answer, .now)
        inFlight = nil
    }
}
