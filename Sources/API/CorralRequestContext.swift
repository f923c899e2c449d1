import Hummingbird
import NIOCore

/// The request context of every corral route: Hummingbird's core storage plus the connection's
/// channel, which streaming routes watch to notice a client that went away.
public struct CorralRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    /// The dashboard session that authenticated the request (the web listener's cookie); nil otherwise.
    public var webSession: WebSessions.Session?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Request bodies are small JSON documents.
    public var maxUploadSize: Int { 1 << 20 }
}
